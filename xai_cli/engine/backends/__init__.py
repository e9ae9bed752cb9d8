"""What cannot be written on ``keras.ops``: one small module per Keras backend.

The engine is written on ``keras.ops`` and runs on whichever backend Keras was started
with (``KERAS_BACKEND``, TensorFlow by default). The few things each backend does its own
way live in one module each, behind the same functions, so that a reader sees in one
place what each backend does:

- ``NAME``: the backend, as Keras names it;
- ``constant(value)``: a weight or array as a plain tensor, outside any autodiff tape;
- ``outside_trace()``: a context in which ops run eagerly while a function is being
  compiled, so that modified and transposed kernels are computed once, not per batch;
- ``vjp(fn, inputs)``: ``fn(inputs)`` and a function from an output gradient to the
  inputs' vector-Jacobian products;
- ``compile(fn, signature, jit)``: ``fn`` compiled once for batches of any size (and,
  where the signature has None, of any sequence length); it takes and returns NumPy
  arrays and is traced at once (rule errors surface early);
- ``normal(shape, index, seed, sample)``: noise per input that depends only on
  ``(seed, index, sample)``, whichever batch the input lands in;
- ``gpu_available()``, ``device_name()``, ``peak_memory_mb()``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from contextlib import contextmanager
from types import ModuleType

from ...errors import XaiError

# each backend's framework and the pip extra that installs it
EXTRAS = {"tensorflow": "xai", "jax": "xai[jax]", "torch": "xai[torch]"}


def example(shape: tuple) -> tuple:
    """A concrete ``shape`` to trace with: a length of one where any length is taken."""
    return tuple(1 if d is None else d for d in shape)


def requested() -> str:
    """The backend Keras will start with: ``KERAS_BACKEND``, else its config, else TensorFlow."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    return os.environ.get("KERAS_BACKEND") or _configured() or "tensorflow"


def _configured() -> str | None:
    path = os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "keras.json")
    try:
        with open(path) as f:
            return json.load(f).get("backend")
    except (OSError, ValueError, AttributeError):
        return None


def start() -> ModuleType:
    """Import Keras and its backend without the backend's start-up messages on the
    user's terminal; a backend that is asked for but not installed is a clear error."""
    name = requested()
    if name not in EXTRAS:
        raise XaiError(f"KERAS_BACKEND={name}: xai runs on {', '.join(EXTRAS)}")
    if "keras" not in sys.modules:
        with _quiet_stderr():
            try:
                importlib.import_module(name)
            except ImportError as exc:
                raise XaiError(f"Keras backend '{name}' is not installed ({exc}); install it with "
                               f"pip install '{EXTRAS[name]}'") from None
            importlib.import_module("keras")
            current().start()
    return current()


def runs_on(device: str = "auto") -> dict[str, str]:
    """The backend and the device a job with ``--device device`` runs on."""
    backend = current()
    gpu = backend.device_name() if device != "cpu" else None
    return {"backend": backend.NAME, "device": gpu or "cpu"}


def current() -> ModuleType:
    """The module of the backend Keras runs on."""
    import keras
    return importlib.import_module(f"{__name__}.{keras.backend.backend()}")


@contextmanager
def _quiet_stderr():
    """File descriptor 2 silenced: TensorFlow logs through absl before any log level is
    read, and JAX and PyTorch may warn about accelerators while they load."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
