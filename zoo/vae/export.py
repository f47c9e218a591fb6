"""Export, sample and evaluate the VAE.

    python -m zoo export vae                      # runs/vae -> exported/vae/
    python -m zoo sample vae --num 64             # prior samples, from the TFLite file
    python -m zoo evaluate vae                    # test ELBO, IWAE NLL (k=1000), FD

Every measurement goes through the exported signatures (``encode`` and
``decode``), so the same code scores the Keras file, the SavedModel and each
TFLite variant.
"""

import functools
import json
import os

import numpy as np

from zoo.core import export as core_export
from zoo.core.artifacts import KerasFileModel, load_exported
from zoo.core.errors import BadInputError
from zoo.core.paths import EXPORTED_DIR
from zoo.core.plotting import save_image_grid
from zoo.gan.export import sample as sample_from_noise
from zoo.vae.model import IMAGE_SHAPE, binarize_fixed, iwae_bound, log_importance_weights

NAME = "vae"
EVAL_SEED = 12345  # binarization, posterior and prior noise of every measurement, so numbers compare
HEADLINE_SAMPLES = 1000  # k of the importance-weighted test NLL (Burda et al. used 5000)


def signatures(model):
    """``serving_default``/``decode``, ``encode`` and ``reconstruct`` (see the model card)."""
    import tensorflow as tf

    latents = {"latents": (tf.TensorSpec([None, model.latent_dim], tf.float32),
                           "latent vectors; standard-normal rows sample the prior")}
    images = {"images": (tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32),
                         "digits, float32 in [0, 1] (0 = black background)")}
    decode_outputs = {"images": "Bernoulli means of the pixels, float32 in [0, 1]",
                      "logits": "Bernoulli logits of the pixels (sigmoid gives images)"}
    return [
        core_export.Signature("serving_default", model.decode, latents, decode_outputs),
        core_export.Signature("decode", model.decode, latents, decode_outputs),
        core_export.Signature("encode", model.encode, images, {
            "mean": "posterior mean of q(z|x), [batch, latent_dim]",
            "log_variance": "posterior log-variance of q(z|x), [batch, latent_dim]"}),
        core_export.Signature("reconstruct", model.reconstruct, images, {
            "images": "decoded posterior mean, float32 in [0, 1]"}),
    ]


class KerasVAE(KerasFileModel):
    """Runs the exported signatures from ``vae.keras``."""

    def run(self, signature, inputs):
        return _run_signature(self.model, signature, inputs)


class InMemoryVAE:
    """The runners' interface, ``runner(signature, **inputs)``, on a VAE in memory (e.g. mid-training)."""

    def __init__(self, model):
        self.model = model

    def __call__(self, signature="serving_default", **inputs):
        return _run_signature(self.model, signature, inputs)


def _run_signature(model, signature, inputs):
    method = {"serving_default": model.decode, "decode": model.decode,
              "encode": model.encode, "reconstruct": model.reconstruct}[signature]
    return {name: np.asarray(value) for name, value in method(*inputs.values()).items()}


def likelihood_bounds(runner, images, *, num_samples=HEADLINE_SAMPLES, seed=EVAL_SEED, decode_batch=5000,
                      progress=True):
    """Test ELBO and importance-weighted NLL bound, in nats per image, through ``runner``'s signatures.

    Args:
        images: ``[n, 28, 28, 1]`` in [0, 1]; binarized once with ``seed``.
        num_samples: k latent samples per image; the IWAE bound uses all k, the
            ELBO is their average log-weight (an unbiased one-sample ELBO estimate).

    Returns:
        negative_elbo, reconstruction_loss, kl_loss, iwae_nll (all means over
        images, nats), iwae_samples, num_images.
    """
    import keras
    import tensorflow as tf

    from zoo.vae.model import posterior, prior, tfd

    if num_samples < 1:
        raise BadInputError(f"the number of importance samples must be at least 1, got {num_samples}")
    binary = binarize_fixed(images, seed)
    rng = np.random.default_rng(seed + 1)
    per_call = max(1, decode_batch // num_samples)  # images per decode call
    totals = {"negative_elbo": 0.0, "reconstruction_loss": 0.0, "kl_loss": 0.0, "iwae_nll": 0.0}
    bar = keras.utils.Progbar(len(binary), unit_name="image") if progress else None
    for start in range(0, len(binary), per_call):
        x = binary[start : start + per_call]
        n = len(x)
        posterior_params = runner("encode", images=x)
        mean, log_variance = posterior_params["mean"], posterior_params["log_variance"]
        eps = rng.standard_normal((num_samples, n, mean.shape[-1])).astype(np.float32)
        latents = mean + np.exp(0.5 * log_variance) * eps
        logits = runner("decode", latents=latents.reshape(-1, mean.shape[-1]))["logits"]
        logits = logits.reshape(num_samples, n, *IMAGE_SHAPE)
        log_weights = log_importance_weights(x, mean, log_variance, latents, logits)  # [k, n]
        kl = tfd.kl_divergence(posterior(mean, log_variance), prior(mean.shape[-1]))
        totals["negative_elbo"] += float(-tf.reduce_sum(tf.reduce_mean(log_weights, axis=0)))
        totals["kl_loss"] += float(tf.reduce_sum(kl))
        totals["iwae_nll"] += float(-tf.reduce_sum(iwae_bound(log_weights)))
        if bar:
            bar.add(n)
    count = len(binary)
    result = {key: round(value / count, 3) for key, value in totals.items()}
    # E_q[-log p(x|z)] = -ELBO - KL, so the two parts add up to the total exactly.
    result["reconstruction_loss"] = round(result["negative_elbo"] - result["kl_loss"], 3)
    result.update(iwae_samples=int(num_samples), num_images=int(count))
    return result


def prior_samples(runner, latent_dim, num_samples, seed):
    batches = core_export.noise_batches(latent_dim, num_samples, seed)
    return np.concatenate([runner("decode", latents=z)["images"] for z in batches])


def export(*, run_dir=None, output_dir=EXPORTED_DIR, version=1, num_eval_samples=10000,
           variant_test_images=1000, variant_iwae_samples=100, headline_test_images=10000,
           headline_iwae_samples=HEADLINE_SAMPLES):
    """Export the newest checkpoint of a VAE run, measuring every runtime.

    Each runtime (Keras, SavedModel, each TFLite file) gets the ELBO and an IWAE
    bound with ``variant_iwae_samples`` samples on the first ``variant_test_images``
    test digits, and the Fréchet distance of ``num_eval_samples`` prior samples;
    the SavedModel also gets the headline: the IWAE bound with k = 1000 on all
    10,000 test digits (10 million decodes: about 15 minutes on a 2-core CPU).
    The notebook and the tests shrink every count.
    """
    from zoo.core.data import mnist_images
    from zoo.core.metrics import MnistQuality
    from zoo.vae.train import load_trained

    run_dir = run_dir or os.path.join("runs", NAME)
    model, run, state = load_trained(run_dir)
    quality = MnistQuality()
    test_images, _ = mnist_images("test")

    def evaluate_fn(runner):
        bounds = likelihood_bounds(runner, test_images[:variant_test_images], num_samples=variant_iwae_samples)
        samples = prior_samples(runner, model.latent_dim, num_eval_samples, EVAL_SEED)
        return {**bounds, **quality.evaluate(samples)}

    def detailed_evaluate_fn(runner):
        return likelihood_bounds(runner, test_images[:headline_test_images], num_samples=headline_iwae_samples)

    def samples_fn(runner, path):
        latents = core_export.noise_batches(model.latent_dim, 100, 0)[0]
        save_image_grid(runner("decode", latents=latents)["images"], path, columns=10,
                        title="vae: 100 prior samples (Bernoulli means) from vae.tflite (LiteRT), seed 0")

    training = core_export.training_record(run, state)
    return core_export.export_model(
        NAME,
        signatures=signatures(model),
        output_dir=output_dir,
        version=version,
        description="Convolutional VAE on dynamically binarized MNIST; decode standard-normal latents to "
                    "sample, encode digits to their posterior.",
        paper=_paper(),
        training=training,
        keras_model=core_export.inference_copy(model),
        keras_loader="zoo.vae.export:KerasVAE",
        evaluate_fn=evaluate_fn,
        detailed_evaluate_fn=detailed_evaluate_fn,
        samples_fn=samples_fn,
        primary_metric="iwae_nll",
        notes={"metric_definitions": {
            "negative_elbo": "test negative ELBO, nats per image (mean of k log-weights), lower is better",
            "reconstruction_loss": "E_q[-log p(x|z)], nats per image",
            "kl_loss": "KL(q(z|x) || p(z)), analytic, nats per image",
            "iwae_nll": "importance-weighted bound on the test negative log-likelihood with iwae_samples "
                        "samples per image (Burda et al. 2016), nats per image, lower is better",
            "protocol": f"MNIST test digits binarized once with numpy default_rng({EVAL_SEED}); posterior "
                        f"noise default_rng({EVAL_SEED + 1}); per runtime: the first {variant_test_images} "
                        f"test digits, k = {variant_iwae_samples}",
            "frechet_distance": "classifier Fréchet distance of prior samples (decoded Bernoulli means, "
                                f"default_rng({EVAL_SEED}) latents) to the MNIST test digits, as for the GANs",
            "detailed": f"savedmodel_detailed: the same bounds with k = {headline_iwae_samples} on "
                        f"{min(headline_test_images, len(test_images))} test digits, run on the SavedModel "
                        "(the model card's headline)",
        }},
    )


def _paper():
    from zoo.core.registry import get_model

    return get_model(NAME).paper


def evaluate(*, runtime="tflite", variant="float32", num_samples=10000, iwae_samples=HEADLINE_SAMPLES,
             seed=None, exported_dir=EXPORTED_DIR):
    """Test ELBO and IWAE NLL (nats) of the exported VAE, and the FD of its prior samples."""
    from zoo.core.data import mnist_images
    from zoo.core.metrics import MnistQuality

    seed = EVAL_SEED if seed is None else seed
    runner = load_exported(NAME, runtime=runtime, variant=variant, exported_dir=exported_dir)
    latent_dim = runner.signatures["decode"]["inputs"]["latents"]["shape"][1]
    test_images, _ = mnist_images("test", limit=num_samples)
    metrics = likelihood_bounds(runner, test_images, num_samples=iwae_samples, seed=seed)
    metrics.update(MnistQuality().evaluate(prior_samples(runner, latent_dim, num_samples, seed)))
    print(json.dumps({"model": NAME, "runtime": runtime, "variant": variant, **metrics}, indent=2))
    return metrics


sample = functools.partial(sample_from_noise, NAME)
