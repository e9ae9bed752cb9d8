"""Loading a Keras model file: ``.keras``, or ``.h5`` of Keras 3 or (via legacy_h5) Keras 2."""

from __future__ import annotations

from pathlib import Path

import keras

from ..errors import XaiError
from . import (
    kmeans,  # noqa: F401 (registers its Keras layer: models with it load)
    legacy_h5,
)

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


def load(path: str | Path) -> keras.Model:
    """Load a ``.keras`` or legacy ``.h5`` file in Keras safe mode.

    A Keras 2 ``.h5`` file that Keras 3 cannot load goes to :mod:`xai_cli.models.legacy_h5`; a model
    loaded that way has the attribute ``legacy_h5_rewrites`` (what was changed)."""
    path = Path(path)
    if not path.is_file():
        raise XaiError(f"model file '{path}' does not exist")
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise XaiError(f"model file '{path}' should end in .keras or .h5")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for corrupt or unsafe files
        # legacy_h5 names the layer it refuses; None: not a Keras 2 file, Keras's error stands
        model = legacy_h5.load(path) if path.suffix.lower() != ".keras" else None
        if model is not None:
            return model
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "safe_mode" in str(exc) or "Lambda" in str(exc):
            raise XaiError(f"model '{path}' contains a Lambda layer, which runs arbitrary code "
                           "when loaded; xai loads models in Keras safe mode and cannot explain "
                           "Lambda layers. Rebuild the model without them") from exc
        raise XaiError(f"cannot load model '{path}': {message}") from exc

