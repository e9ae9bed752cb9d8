"""xai: Layer-wise Relevance Propagation heatmaps for Keras image classifiers."""

__version__ = "0.1.0"
