"""Audio shared by the zoo's sound models and their metric: mu-law, log-mel features, WAV files, Griffin-Lim.

Everything is 8 kHz mono, one second per clip (the Free Spoken Digit Dataset's
rate). The log-mel features are the same for the WaveNet's conditioning, the
spoken-digit classifier behind the metrics and the spectrogram pictures, so a
number measured on one means the same on the others.

    frames = 100 per second: an STFT of 256 samples (32 ms, Hann) every 80 samples (10 ms);
    frame i covers samples [80 i, 80 i + 256) of the clip padded with 176 zeros at the end;
    40 mel bands, 60 Hz to 3,800 Hz; log(magnitude + 1e-3).
"""

import io
import os
import wave

import numpy as np

from zoo.core.runtime.errors import BadInputError, DataNotFoundError

SAMPLE_RATE = 8000
CLIP_SAMPLES = 8000  # one second
MU_LAW_CHANNELS = 256
FFT_LENGTH = 256
HOP_LENGTH = 80
MEL_BINS = 40
MEL_FRAMES = CLIP_SAMPLES // HOP_LENGTH  # 100
LOWER_HZ, UPPER_HZ = 60.0, 3800.0
LOG_OFFSET = 1e-3


# --- mu-law (ITU-T G.711's companding, 256 levels as in WaveNet) ---------------------------

def mu_law_encode(audio, channels=MU_LAW_CHANNELS):
    """Audio in [-1, 1] -> int32 classes 0..channels-1 (NumPy or TensorFlow input; NumPy out for NumPy in)."""
    mu = channels - 1
    if isinstance(audio, np.ndarray) or np.isscalar(audio):
        x = np.clip(np.asarray(audio, np.float64), -1.0, 1.0)
        y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
        return np.floor((y + 1.0) / 2.0 * mu + 0.5).astype(np.int32)
    import tensorflow as tf

    x = tf.clip_by_value(tf.cast(audio, tf.float32), -1.0, 1.0)
    y = tf.sign(x) * tf.math.log1p(mu * tf.abs(x)) / np.log1p(mu)
    return tf.cast(tf.floor((y + 1.0) / 2.0 * mu + 0.5), tf.int32)


def mu_law_decode(classes, channels=MU_LAW_CHANNELS):
    """int classes 0..channels-1 -> audio in [-1, 1] (the inverse of :func:`mu_law_encode` up to its rounding)."""
    mu = channels - 1
    if isinstance(classes, np.ndarray) or np.isscalar(classes):
        y = 2.0 * np.asarray(classes, np.float64) / mu - 1.0
        return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu).astype(np.float32)
    import tensorflow as tf

    y = 2.0 * tf.cast(classes, tf.float32) / mu - 1.0
    return tf.sign(y) * (tf.exp(tf.abs(y) * float(np.log1p(mu))) - 1.0) / mu


# --- features -------------------------------------------------------------------------------

def _mel_matrix():
    import tensorflow as tf

    return tf.signal.linear_to_mel_weight_matrix(MEL_BINS, FFT_LENGTH // 2 + 1, SAMPLE_RATE, LOWER_HZ, UPPER_HZ)


def stft_magnitude(audio):
    """``audio [batch, 8000]`` -> magnitudes ``[batch, 100, 129]`` (frame i starts at sample 80 i)."""
    import tensorflow as tf

    audio = tf.convert_to_tensor(audio, tf.float32)
    padded = tf.pad(audio, [[0, 0], [0, FFT_LENGTH - HOP_LENGTH]])
    return tf.abs(tf.signal.stft(padded, FFT_LENGTH, HOP_LENGTH, FFT_LENGTH, window_fn=tf.signal.hann_window))


def log_mel(audio):
    """``audio float [batch, 8000]`` in [-1, 1] -> log-mel features ``[batch, 100, 40]`` (TensorFlow)."""
    import tensorflow as tf

    return tf.math.log(tf.tensordot(stft_magnitude(audio), _mel_matrix(), 1) + LOG_OFFSET)


def griffin_lim(magnitudes, iterations=60, seed=0):
    """Audio ``[batch, 8000]`` whose STFT magnitude approximates ``magnitudes [batch, 100, 129]``.

    Griffin & Lim (1984): alternate between imposing the magnitudes and keeping
    the phase of the signal that the inverse STFT gives (the metrics' trivial baseline).
    """
    import tensorflow as tf

    magnitudes = tf.cast(magnitudes, tf.complex64)
    rng = np.random.default_rng(seed)
    phase = tf.constant(np.exp(2j * np.pi * rng.random(magnitudes.shape)).astype(np.complex64))
    window = tf.signal.inverse_stft_window_fn(HOP_LENGTH, forward_window_fn=tf.signal.hann_window)
    length = CLIP_SAMPLES + FFT_LENGTH - HOP_LENGTH
    audio = None
    for _ in range(iterations):
        audio = tf.signal.inverse_stft(magnitudes * phase, FFT_LENGTH, HOP_LENGTH, FFT_LENGTH, window_fn=window)
        audio = audio[:, :length]
        spectrum = tf.signal.stft(audio, FFT_LENGTH, HOP_LENGTH, FFT_LENGTH, window_fn=tf.signal.hann_window)
        phase = spectrum / tf.cast(tf.maximum(tf.abs(spectrum), 1e-8), tf.complex64)
    return np.clip(audio.numpy()[:, :CLIP_SAMPLES], -1.0, 1.0)


def fit_to_clip(samples, length=CLIP_SAMPLES):
    """Trim or zero-pad a 1-D array to ``length`` samples."""
    samples = np.asarray(samples, np.float32)[:length]
    return np.pad(samples, (0, length - len(samples)))


# --- WAV files (16-bit PCM, mono) -------------------------------------------------------------

def wav_bytes(audio, sample_rate=SAMPLE_RATE):
    """One clip ``[samples]`` in [-1, 1] -> the bytes of a 16-bit mono WAV file."""
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise BadInputError(f"a WAV holds one mono clip [samples]; got shape {list(audio.shape)}")
    if not np.all(np.isfinite(audio)):
        raise BadInputError("the audio has NaN or infinite samples")
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(int(sample_rate))
        f.writeframes(pcm.tobytes())
    return buffer.getvalue()


def write_wav(path, audio, sample_rate=SAMPLE_RATE):
    """Write one clip as a 16-bit mono WAV, atomically (a reader never sees half a file)."""
    data = wav_bytes(audio, sample_rate)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path


def read_wav(path, sample_rate=SAMPLE_RATE):
    """A 16-bit mono WAV at ``sample_rate`` -> float32 ``[samples]`` in [-1, 1]; a clear error otherwise."""
    try:
        with wave.open(path if not isinstance(path, bytes) else io.BytesIO(path), "rb") as f:
            channels, width, rate, frames = f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getnframes()
            raw = f.readframes(frames)
    except (wave.Error, EOFError, OSError) as error:
        raise DataNotFoundError(f"{_name(path)} is not a readable WAV file ({error})") from None
    if channels != 1 or width != 2 or rate != sample_rate:
        raise DataNotFoundError(f"{_name(path)}: expected 16-bit mono at {sample_rate} Hz, got {8 * width}-bit, "
                                f"{channels} channel(s), {rate} Hz")
    if len(raw) != 2 * frames or frames == 0:
        raise DataNotFoundError(f"{_name(path)} is truncated or empty: its header says {frames} samples, "
                                f"{len(raw) // 2} are there")
    return np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0


def _name(path):
    return "the WAV bytes" if isinstance(path, bytes) else repr(str(path))


# --- pictures -------------------------------------------------------------------------------------

def plot_spectrograms(clips, titles, path, columns=5, seconds=1.0, marks=None, dpi=80):
    """Log-mel spectrograms of ``clips [n, samples]`` (``seconds`` long) in a grid, written as a PNG, atomically;
    ``marks``: per clip, times in seconds drawn as vertical lines (where each spoken digit starts)."""
    # A bare Figure with an Agg canvas: no pyplot, so a notebook's own backend is left alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from zoo.core.runtime.files import atomic_file

    features = log_mel(np.asarray(clips, np.float32)).numpy()
    rows = (len(clips) + columns - 1) // columns
    width = 2.4 if seconds <= 1 else min(1.6 * seconds, 8.0)
    figure = Figure(figsize=(width * columns, 2.0 * rows), dpi=dpi)
    for i, (feature, title) in enumerate(zip(features, titles)):
        ax = figure.add_subplot(rows, columns, i + 1)
        ax.imshow(feature.T, origin="lower", aspect="auto", cmap="magma", vmin=np.log(LOG_OFFSET), vmax=3.0,
                  extent=[0, seconds, 0, MEL_BINS])
        for mark in (marks[i] if marks is not None else ()):
            ax.axvline(mark, color="cyan", linewidth=0.8)
        ax.set_title(title, fontsize=9)
        ax.set_xticks(np.linspace(0, seconds, 3) if seconds <= 1 else np.arange(0, seconds + 1e-9, 1.0))
        ax.set_yticks([])
        ax.tick_params(labelsize=7)
    figure.tight_layout()
    with atomic_file(path) as tmp:
        FigureCanvasAgg(figure).print_png(tmp)
    return path
