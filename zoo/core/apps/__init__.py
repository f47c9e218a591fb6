"""Loops a phone app runs around an exported TFLite file: NumPy and LiteRT only, no zoo import.

The copyable scripts (``zoo/<model>/tflite_*.py``) use these; copied into an app, a script
and the modules it names sit side by side (``from ddim import ...`` then works).
"""
