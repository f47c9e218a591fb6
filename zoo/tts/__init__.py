"""Speech from text: digit strings in six voices, a FastSpeech-style model and the WaveNet vocoder."""
