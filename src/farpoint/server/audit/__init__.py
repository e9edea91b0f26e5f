"""Audit room."""
