"""What the speech models' recipes share: the six voices, a voice from the command line, the in-graph check of the
sampling noise and the vocoder's ``step`` signature (the WaveNet exports it, and so does every model it voices)."""

from zoo.core import export as core_export
from zoo.core.data.audio import HOP_LENGTH
from zoo.core.runtime.errors import BadInputError

SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")  # FSDD's, sorted: the speaker input's index


def speaker_index(speaker, speakers=SPEAKERS):
    """A speaker's index from its name ("jackson") or index (1, "1"), with a clear error otherwise."""
    from zoo.core.apps.speech import speaker_index as index_of

    try:
        return index_of(speaker, tuple(speakers))
    except ValueError as error:
        raise BadInputError(str(error)) from None


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
