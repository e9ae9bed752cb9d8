"""Importing TensorFlow without its C++ start-up messages on the user's terminal.

TensorFlow 2.21 logs through absl before ``TF_CPP_MIN_LOG_LEVEL`` is read, so the
only way to keep stderr for xai's own messages is to silence file descriptor 2
while TensorFlow loads and looks for devices.
"""

import os
import sys


def import_tensorflow() -> None:
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf
        tf.config.list_physical_devices()
        tf.zeros(1)  # initialises the devices, which logs once more
        tf.get_logger().setLevel("ERROR")  # one trace per method reads as "retracing"
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
