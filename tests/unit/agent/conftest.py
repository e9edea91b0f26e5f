"""Fixtures of the agent tests; they live in agent_fakes so tests can import its types."""

from agent_fakes import control_plane, enrolled, model_a, model_b, server_key

__all__ = ["control_plane", "enrolled", "model_a", "model_b", "server_key"]
