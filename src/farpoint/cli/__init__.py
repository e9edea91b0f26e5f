"""The `farpoint` command line: parse, call the SDK, render (`farpoint.cli.main.app`)."""
