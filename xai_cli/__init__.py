"""xai: Layer-wise Relevance Propagation and Deep Taylor heatmaps for Keras image classifiers.

The command line is ``xai``; from Python, ``xai_cli.explain``, ``xai_cli.evaluate`` and
``xai_cli.Explainer`` (:mod:`xai_cli.api`) run the same engine. They are imported on first
use, so that ``import xai_cli`` (and ``xai --help``) stays free of Keras and its backend.
"""

__version__ = "0.1.0"
__all__ = ["Evaluation", "Explainer", "WordRelevance", "evaluate", "explain"]


def __getattr__(name: str):
    if name in __all__:
        from .engine import backends
        backends.start()   # without the Keras backend's start-up messages
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'xai_cli' has no attribute '{name}'")
