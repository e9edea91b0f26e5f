"""Farpoint: from data to the farthest edge."""

__version__ = "0.1.0"
