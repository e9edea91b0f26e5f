"""Pydantic models of the HTTP API, shared by the server, the SDK and the console."""
