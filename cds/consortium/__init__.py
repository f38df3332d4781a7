"""A medical consortium: signing and verifying what member sites share."""
