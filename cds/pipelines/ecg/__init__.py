"""Electrocardiograms: reading 12-lead ECGs from any source into one record, and judging each lead's signal."""
