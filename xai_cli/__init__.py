"""xai: Layer-wise Relevance Propagation and Deep Taylor heatmaps for Keras image classifiers."""

__version__ = "0.1.0"
