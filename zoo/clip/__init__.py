"""CLIP on MNIST: text (English or Chinese, as UTF-8 bytes) and digits in one embedding space."""
