"""The VAE's recipe: binarized MNIST, a cosine learning-rate schedule, four signatures and likelihood metrics.

    python -m zoo train vae --epochs 100
    python -m zoo train vae --preset latent2 --run-dir runs/vae-latent2   # the 2-D latent space
    python -m zoo export vae                      # runs/vae -> exported/vae/
    python -m zoo sample vae --num 64             # prior samples, from the TFLite file
    python -m zoo evaluate vae                    # test ELBO, IWAE NLL (k=1000), FD

The learning rate follows a cosine decay over the whole run (to 10% of its
start), so ``--epochs`` is part of the run's config: resuming with another value
is refused rather than silently changing the schedule. Every measurement goes
through the exported signatures (``encode`` and ``decode``), so the same code
scores the Keras file, the SavedModel and each TFLite variant.
"""

import numpy as np

from zoo.core import export as core_export
from zoo.core.data.datasets import mnist_training_data
from zoo.core.runtime.errors import BadInputError
from zoo.core.recipes.images import generate_from_runner, sample_grid, standard_normal_sample_options
from zoo.core.training.optimizers import CosineDecayAdam
from zoo.core.data.plotting import save_image_grid
from zoo.core.runtime.progress import progress_bar
from zoo.core.recipes.recipe import EVAL_SEED, Option, Recipe
from zoo.core.recipes.registry import register
from zoo.vae.model import (IMAGE_SHAPE, PRESETS, VAE, binarize_fixed, iwae_bound, log_importance_weights, posterior,
                           prior, tfd)

HEADLINE_SAMPLES = 1000  # k of the importance-weighted test NLL (Burda et al. used 5000)


def vae_signatures(model):
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


def vae_calibration(latent_dim, seed=1):
    """``(representative_inputs, description)`` for the VAE's full-integer int8 file: standard-normal latents
    for ``serving_default``/``decode`` (what sampling feeds them; seed 1, not the evaluation's), binarized
    training digits for ``encode``/``reconstruct`` (what the likelihood evaluation feeds them)."""
    from zoo.core.data.datasets import mnist_images

    rows = core_export.REPRESENTATIVE_ROWS
    binarized = []  # read once, when the first image signature is calibrated

    def representative(signature):
        if signature in ("encode", "reconstruct"):
            if not binarized:
                binarized.append(binarize_fixed(mnist_images("train", limit=rows)[0], seed))
            digits = binarized[0]
            for i in range(rows):
                yield {"images": digits[i:i + 1]}
        else:
            rng = np.random.default_rng(seed)
            for _ in range(rows):
                yield {"latents": rng.standard_normal((1, latent_dim)).astype(np.float32)}

    return representative, (f"{rows} rows of standard-normal latents (seed {seed}) for serving_default and "
                            f"decode; the first {rows} MNIST training digits, binarized (seed {seed}), for encode "
                            "and reconstruct")


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
    import tensorflow as tf

    if num_samples < 1:
        raise BadInputError(f"the number of importance samples must be at least 1, got {num_samples}")
    binary = binarize_fixed(images, seed)
    rng = np.random.default_rng(seed + 1)
    per_call = max(1, decode_batch // num_samples)  # images per decode call
    totals = {"negative_elbo": 0.0, "reconstruction_loss": 0.0, "kl_loss": 0.0, "iwae_nll": 0.0}
    bar = progress_bar(len(binary), unit_name="image") if progress else None
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
    """Decoded standard-normal latents (Bernoulli means), as the noise -> images models are scored."""
    return generate_from_runner(runner, core_export.noise_batches(latent_dim, num_samples, seed), signature="decode")


@register
class VAERecipe(CosineDecayAdam, Recipe):
    name = "vae"
    summary = "convolutional VAE on binarized MNIST: latents [batch, 32] <-> digits [batch, 28, 28, 1]"
    paper = "Kingma & Welling (2014), Auto-Encoding Variational Bayes, arXiv:1312.6114"
    model_class = VAE
    presets = PRESETS
    defaults = {"preset": "base", "epochs": 100, "batch_size": 128, "learning_rate": 1e-3}
    sample_help = ("Decode standard-normal latents (prior samples) with the exported VAE (sha256-checked first) "
                   "and write a PNG grid of the Bernoulli means.")
    evaluate_help = ("Test negative ELBO and importance-weighted NLL bound (nats) on the MNIST test digits, and the "
                     "FD of prior samples. All 10,000 digits with k = 1000 take about 24 minutes on this 2-core CPU "
                     "(141 ms a digit through the SavedModel, measured in notebooks/vae.ipynb).")
    metrics = ["iwae_nll", "negative_elbo", "frechet_distance"]

    options = (
        *standard_normal_sample_options("latents"),
        Option("num_samples", int, 10000, "test digits scored and prior samples drawn", commands=("evaluate",),
               minimum=1),
        Option("iwae_samples", int, HEADLINE_SAMPLES, "importance samples per test digit for the NLL bound "
                                                      "(10,000 digits x 1000: about 24 minutes on 2 CPU cores)",
               commands=("evaluate",), minimum=1),
        Option("num_eval_samples", int, 10000, "prior samples scored (FD) per runtime and variant",
               commands=("export",), minimum=1),
        Option("variant_test_images", int, 1000, "test digits each runtime and variant's bounds are measured on",
               commands=("export",), minimum=1),
        Option("variant_iwae_samples", int, 100, "importance samples of each runtime and variant's IWAE bound",
               commands=("export",), minimum=1),
        Option("headline_test_images", int, 10000, "test digits of the SavedModel's headline bounds",
               commands=("export",), minimum=1),
        Option("headline_iwae_samples", int, HEADLINE_SAMPLES, "importance samples of the headline IWAE bound",
               commands=("export",), minimum=1),
    )

    # === Training ===
    def training_data(self, model, *, batch_size, seed, limit):
        # Test-set negative ELBO (one sample, fresh binarization) is logged as val_loss for monitoring only.
        return mnist_training_data(batch_size=batch_size, seed=seed, limit=limit,
                                   how="dynamically binarized each step")

    def epoch_samples(self, model, seed):
        fixed_latents = np.random.default_rng(seed).standard_normal((64, model.latent_dim)).astype("float32")
        return lambda m: m.decode(fixed_latents)["images"]

    # === Export ===
    def signatures(self, model):
        return vae_signatures(model)

    def export_plan(self, model, training, num_eval_samples, variant_test_images, variant_iwae_samples,
                    headline_test_images, headline_iwae_samples):
        """Each runtime (Keras, SavedModel, each TFLite file) gets the ELBO and an IWAE
        bound with ``variant_iwae_samples`` samples on the first ``variant_test_images``
        test digits, and the Fréchet distance of ``num_eval_samples`` prior samples;
        the SavedModel also gets the headline: the IWAE bound with k = 1000 on all
        10,000 test digits (10 million decodes: about 24 minutes on a 2-core CPU).
        The notebook and the tests shrink every count.
        """
        from zoo.core.data.datasets import mnist_images
        from zoo.core.metrics.mnist import MnistQuality

        quality = MnistQuality()
        test_images, _ = mnist_images("test")

        def evaluate(runner):
            bounds = likelihood_bounds(runner, test_images[:variant_test_images], num_samples=variant_iwae_samples)
            samples = prior_samples(runner, model.latent_dim, num_eval_samples, EVAL_SEED)
            return {**bounds, **quality.evaluate(samples)}

        def samples(runner, path):
            latents = core_export.noise_batches(model.latent_dim, 100, 0)[0]
            save_image_grid(runner("decode", latents=latents)["images"], path, columns=10,
                            title="vae: 100 prior samples (Bernoulli means) from vae.tflite (LiteRT), seed 0")

        representative, representative_data = vae_calibration(model.latent_dim)

        return core_export.ExportPlan(
            name=self.name,
            signatures=self.signatures(model),
            representative_inputs=representative,
            representative_data=representative_data,
            description="Convolutional VAE on dynamically binarized MNIST; decode standard-normal latents to "
                        "sample, encode digits to their posterior.",
            paper=self.paper,
            training=training,
            keras_model=self.keras_model(model),
            evaluate=evaluate,
            detailed_evaluate=lambda runner: likelihood_bounds(runner, test_images[:headline_test_images],
                                                               num_samples=headline_iwae_samples),
            samples=samples,
            primary_metric=self.metrics[0],
            metric_summary=self.metrics,
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

    # === Use ===
    def sample(self, runner, *, output, seed, num, noise):
        return sample_grid(runner, self.name, output=output, seed=seed, num=num, noise=noise)

    def evaluate(self, runner, *, seed, num_samples, iwae_samples):
        """Test ELBO and IWAE NLL (nats) of the exported VAE, and the FD of its prior samples."""
        from zoo.core.data.datasets import mnist_images
        from zoo.core.metrics.mnist import MnistQuality

        latent_dim = runner.signatures["decode"]["inputs"]["latents"]["shape"][1]
        test_images, _ = mnist_images("test", limit=num_samples)
        metrics = likelihood_bounds(runner, test_images, num_samples=iwae_samples, seed=seed)
        metrics.update(MnistQuality().evaluate(prior_samples(runner, latent_dim, num_samples, seed)))
        return metrics
