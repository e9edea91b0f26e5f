"""Fixtures of the agent tests; they live in agent_fakes so tests can import its types."""

from agent_fakes import clock, control_plane, enrolled, model_a, model_b, trust_keys

__all__ = ["clock", "control_plane", "enrolled", "model_a", "model_b", "trust_keys"]
