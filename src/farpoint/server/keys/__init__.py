"""Keys room."""
