"""The device agent: enroll, sync, verify, install, self-test, switch, serve, report.

It depends on the standard library, numpy, onnxruntime (imported only when a model is
loaded), cryptography, python-tuf (imported only by its trust worker) and
`farpoint.core`; nothing from the server or the client extras. `farpoint agent enroll`
and `farpoint agent run` are its command line.
"""

__all__: list[str] = []
