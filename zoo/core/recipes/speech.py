"""What the speech models' recipes share: the six voices, a voice from the command line, the in-graph checks of the
speaker and the sampling noise, the ``wav`` signature's noise and files, and the vocoder's ``step`` signature (the
WaveNet exports it, and so does every model it voices)."""

from zoo.core import export as core_export
from zoo.core.data.audio import HOP_LENGTH, SAMPLE_RATE
from zoo.core.runtime.errors import BadInputError

SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")  # FSDD's, sorted: the speaker input's index


def speaker_index(speaker, speakers=SPEAKERS):
    """A speaker's index from its name ("jackson") or index (1, "1"), with a clear error otherwise."""
    from zoo.core.apps.speech import speaker_index as index_of

    try:
        return index_of(speaker, tuple(speakers))
    except ValueError as error:
        raise BadInputError(str(error)) from None


def speaker_checks(speaker, num_speakers, rows, what):
    """In-graph checks that ``speaker`` indexes one of ``num_speakers`` voices and has a row per row of ``rows``
    (the ``what`` input: "digit", "digits")."""
    import tensorflow as tf

    message = f"speaker must be 0-{num_speakers - 1}"
    return [tf.debugging.assert_non_negative(speaker, message=message),
            tf.debugging.assert_less(speaker, num_speakers, message=message),
            tf.debugging.assert_equal(tf.shape(rows)[0], tf.shape(speaker)[0],
                                      message=f"{what} and speaker must have the same batch size")]


def seeded_noise(seed, samples):
    """The ``wav`` signature's sampling noise: ``samples`` uniform numbers per row of ``seed`` (int32 [batch]),
    from TensorFlow's stateless generator (a SavedModel-only signature: TFLite has no such op)."""
    import tensorflow as tf

    return tf.map_fn(lambda s: tf.random.stateless_uniform([samples], seed=tf.stack([s, 0])), seed,
                     fn_output_signature=tf.float32)


def wav_files(audio, lengths=None):
    """A 16-bit mono WAV file per row of ``audio`` (float32 [batch, samples]), each cut to its row of ``lengths``
    (int32 [batch]; default: the whole row)."""
    import tensorflow as tf

    if lengths is None:
        lengths = tf.fill(tf.shape(audio)[:1], tf.shape(audio)[1])
    return tf.map_fn(lambda row: tf.audio.encode_wav(row[0][: row[1], None], SAMPLE_RATE), (audio, lengths),
                     fn_output_signature=tf.string)


def checked_uniform_noise(noise):
    """``noise`` after in-graph checks that it is uniform numbers in [0, 1] (TF Serving clients get the message)."""
    import tensorflow as tf

    message = "noise must be uniform numbers in [0, 1)"
    checks = [tf.debugging.assert_greater_equal(noise, 0.0, message=message),
              tf.debugging.assert_less_equal(noise, 1.0, message=message)]
    with tf.control_dependencies(checks):
        return tf.identity(noise)


def vocoder_step_signature(vocoder, step, conditioning_from):
    """``step``: one sample of the WaveNet vocoder (``vocoder``'s sizes; ``step(conditioning, sample, noise, state)``
    the model's own), its inputs checked in the graph; ``conditioning_from`` names the signature whose
    ``conditioning`` output feeds it."""
    import tensorflow as tf

    def one_sample(conditioning, sample, noise, state):
        message = "sample must be the previous output, in [-1, 1]"
        checks = [tf.debugging.assert_less_equal(tf.abs(sample), 1.0, message=message)]
        with tf.control_dependencies(checks):
            sample = tf.identity(sample)
        return step(conditioning, sample, checked_uniform_noise(noise), vocoder.check_state(state))

    return core_export.Signature("step", one_sample, {
        "conditioning": (tf.TensorSpec([None, vocoder.conditioning_size], tf.float32),
                         f"row t // {HOP_LENGTH} of {conditioning_from}'s conditioning, for sample t"),
        "sample": (tf.TensorSpec([None], tf.float32), "the previous output sample in [-1, 1] (0 for the first)"),
        "noise": (tf.TensorSpec([None], tf.float32), "one uniform [0, 1) number: this sample's randomness"),
        "state": (tf.TensorSpec([None, vocoder.state_size], tf.float32),
                  f"the fast-WaveNet queues: each layer's last d inputs, oldest first, layer by layer "
                  f"({vocoder.residual_channels} channels x {sum(vocoder.dilations)} = {vocoder.state_size}); zeros "
                  "at the start of a clip"),
    }, {"audio": "the new sample [batch] in [-1, 1]", "state": "the queues after this sample"},
        ranges={"sample": (-1.0, 1.0), "noise": (0.0, 1.0)})
