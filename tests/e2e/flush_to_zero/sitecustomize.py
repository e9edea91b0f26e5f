"""Make a Python process run like a device whose floating-point unit flushes subnormal
numbers to zero (ARMv7 NEON always does; so do builds with -ffast-math, and many NPUs).

Put this folder on PYTHONPATH and Python imports it at start (`sitecustomize`), before
any thread exists: it sets the processor's flush-to-zero and denormals-are-zero modes on
the main thread, which every thread started later inherits (so ONNX Runtime computes with
them). ONNX Runtime turns both modes off once per process, on the thread that makes its
first session (unless asked for `session.set_denormal_as_zero`); a processor that cannot
compute subnormals would not obey, so that first session is made here, before the modes
are set. Nothing of Farpoint is changed; only the arithmetic of the machine it runs on.
It prints one line saying so, which the tests look for in the agent's log.

Imported under another name (a test reusing `flush_subnormals`), it changes nothing.
"""

from __future__ import annotations

import ctypes
import platform
import sys

__all__ = ["flush_subnormals", "subnormals_flushed"]

_FENV_BYTES = 64
"""Room for glibc's fenv_t: 32 bytes on x86-64, 8 on aarch64."""
_X86_MXCSR_OFFSET = 28
_X86_FTZ_DAZ = 0x8000 | 0x0040
_ARM_FPCR_FZ = 1 << 24


def flush_subnormals() -> None:
    """Set flush-to-zero (and denormals-are-zero where the processor has it) on the
    calling thread, through glibc's fegetenv/fesetenv; OSError where that is unknown."""
    libc = ctypes.CDLL(None)
    env = (ctypes.c_ubyte * _FENV_BYTES)()
    if libc.fegetenv(env) != 0:
        raise OSError("fegetenv failed")
    machine = platform.machine()
    if machine in ("x86_64", "AMD64"):
        word = ctypes.c_uint32.from_buffer(env, _X86_MXCSR_OFFSET)
        word.value |= _X86_FTZ_DAZ
    elif machine in ("aarch64", "arm64"):
        word = ctypes.c_uint32.from_buffer(env, 0)  # fpcr
        word.value |= _ARM_FPCR_FZ
    else:
        raise OSError(f"flush-to-zero is not known for {machine}")
    if libc.fesetenv(env) != 0:
        raise OSError("fesetenv failed")


def subnormals_flushed() -> bool:
    """True when this thread's arithmetic turns a subnormal result into zero."""
    import numpy as np

    tiny = np.array([1e-30], np.float32)
    return bool((tiny * np.float32(1e-10))[0] == 0.0)


def _first_onnxruntime_session() -> None:
    """Let ONNX Runtime make its once-per-process floating-point setting now."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "first", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


if __name__ == "sitecustomize":
    _first_onnxruntime_session()
    flush_subnormals()
    if not subnormals_flushed():
        raise SystemExit("sitecustomize: the processor still computes subnormal numbers")
    print("test device: subnormal numbers flush to zero on this process", file=sys.stderr)
