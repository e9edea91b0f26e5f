"""Attestations room."""
