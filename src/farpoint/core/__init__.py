"""Light, pure logic shared by the server, the SDK and the device agent.

Nothing here imports anything heavy: the agent depends on it.
"""
