"""Class-conditional DDPM on MNIST: U-Net noise predictor, DDIM sampling, classifier-free guidance.
``model.py`` (networks), ``recipe.py`` (the rest), ``tflite_sample.py`` (the phone app's loop)."""
