"""Trace room: walk the chain from a device or release back to its data."""
