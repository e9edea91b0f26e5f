"""The control plane: REST API, console, blobs, rollout controller."""
