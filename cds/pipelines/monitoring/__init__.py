"""Monitoring: the rules that turn early-warning scores and their trends into alerts."""
