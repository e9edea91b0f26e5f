"""Make a Python process run like a device whose floating-point unit flushes subnormal
numbers to zero (ARMv7 NEON always does; so do builds with -ffast-math, and many NPUs).

Put this folder on PYTHONPATH and Python imports it at start (`sitecustomize`), before
any thread exists: it sets the processor's flush-to-zero and denormals-are-zero modes on
the main thread, which every thread started later inherits, and so does every process
the agent starts (they get the same PYTHONPATH). Nothing of Farpoint is changed; only
the arithmetic of the machine it runs on. It prints one line saying so, which the tests
look for in the agent's log.

ONNX Runtime turns both modes off once per process, on the thread that makes its first
session (unless asked for `session.set_denormal_as_zero`); a processor that cannot
compute subnormals would not obey. So in a process that imports onnxruntime, its first
session is made right after the import, and the modes set again on that thread.

Imported under another name (a test reusing `flush_subnormals`), it changes nothing.
"""

from __future__ import annotations

import base64
import ctypes
import importlib.abc
import importlib.util
import platform
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

__all__ = ["flush_subnormals", "subnormals_flushed"]

_FENV_BYTES = 64
"""Room for glibc's fenv_t: 32 bytes on x86-64, 8 on aarch64."""
_X86_MXCSR_OFFSET = 28
_X86_FTZ_DAZ = 0x8000 | 0x0040
_ARM_FPCR_FZ = 1 << 24
_IDENTITY_ONNX = base64.b64decode(
    "CAg6OwoQCgF4EgF5IghJZGVudGl0eRIFZmlyc3RaDwoBeBIKCggIARIECgIIAWIPCgF5EgoKCAgBEgQKAggBQgQKABAR"
)
"""A one-node ONNX model (y = Identity(x), opset 17): ONNX Runtime's first session."""


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
    smallest = float.fromhex("0x1p-1074")  # a subnormal double
    return smallest * 1.0 == 0.0


class _AfterOnnxruntime(importlib.abc.MetaPathFinder):
    """Runs ONNX Runtime's first session as soon as the module is imported."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != "onnxruntime":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            module.InferenceSession(_IDENTITY_ONNX, providers=["CPUExecutionProvider"])
            flush_subnormals()

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if __name__ == "sitecustomize":
    flush_subnormals()
    if not subnormals_flushed():
        raise SystemExit("sitecustomize: the processor still computes subnormal numbers")
    sys.meta_path.insert(0, _AfterOnnxruntime())
    print("test device: subnormal numbers flush to zero on this process", file=sys.stderr)
