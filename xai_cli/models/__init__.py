"""Reading model files: Keras 3 ``.keras`` and ``.h5``, and the Keras 2 ``.h5`` that Keras 3 refuses."""
