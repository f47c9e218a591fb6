"""A zoo of generative models for Keras 3 on TensorFlow, from training to TF Serving and LiteRT.

    python -m zoo list
    python -m zoo sample dcgan
"""

__version__ = "0.1.0"
