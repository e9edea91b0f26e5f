"""Content-addressed blob storage."""
