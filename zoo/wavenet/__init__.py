"""WaveNet on spoken digits: a digit and a speaker in, one second of 8 kHz speech out."""
