"""Batch runs on a Ray cluster: archive re-reads and population risk scoring (``cds batch``)."""
