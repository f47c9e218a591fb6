"""tf.distribute for every model: strategies, loss scaling and randomness per replica.

The zoo trains with one loop (``zoo.core.training.trainer.Trainer``) under any
``tf.distribute.Strategy``: the default one (one device), ``MirroredStrategy``
(several GPUs, or logical CPUs, in one machine), ``MultiWorkerMirroredStrategy``
(several machines, configured by ``TF_CONFIG``) and ``TPUStrategy``.

``--batch-size`` is the *global* batch: each of the N replicas gets 1/N of it, so
a run gives the same result on 1 or N devices. Two things make that exact in a
model's ``train_step``:

- :func:`scale_loss`: the optimizer *sums* gradients over replicas, so each
  replica's mean loss is divided by N (the mean over the global batch).
- :func:`draw_for_global_batch`: noise drawn inside a step is drawn for the
  global batch from the same seed state on every replica, and each replica takes
  its own slice, so replica k sees the noise one device would give to rows k*b..
"""

import json
import os

from zoo.core.runtime.errors import BadInputError

STRATEGIES = ("default", "mirrored", "multiworker", "tpu")


def make_strategy(name="default", devices=None):
    """The ``tf.distribute.Strategy`` called ``name``.

    Create it before any other TensorFlow work: ``MultiWorkerMirroredStrategy``
    must configure the runtime's collectives first.

    Args:
        name: "default" (one device), "mirrored" (every local GPU, else the CPU),
            "multiworker" (reads ``TF_CONFIG``) or "tpu".
        devices: for "mirrored", explicit devices, e.g. ``["/cpu:0", "/cpu:1"]``.
    """
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = devices or [d.name for d in tf.config.list_logical_devices("GPU")] or None
        on_cpus = not devices or all("CPU" in d.upper() for d in devices)
        # CPU replicas reduce on one device: the default collective all-reduce can mismatch
        # two optimizers' reductions in one step (a GAN) across CPU replicas.
        cross_device_ops = tf.distribute.ReductionToOneDevice() if on_cpus else None
        return tf.distribute.MirroredStrategy(devices, cross_device_ops=cross_device_ops)
    if name == "multiworker":
        check_tf_config()
        configure_coordination(tf)
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as error:
            raise BadInputError(f"--strategy tpu: no TPU found ({error})") from None
        return tf.distribute.TPUStrategy(resolver)
    raise BadInputError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")


def configure_coordination(tf):
    """TensorFlow's own coordination service settings for ``MultiWorkerMirroredStrategy``, with a longer
    heartbeat timeout (``ZOO_HEARTBEAT_TIMEOUT_S``, default 60 s): TF's 10 s aborts every worker's collectives
    when a busy machine starves one process for a moment (seen with two workers sharing 2 CPU cores)."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context

    if context.context().coordination_service is not None:  # configured already: the caller's choice stands
        return
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    cluster_spec = resolver.cluster_spec()
    jobs = [coordination_config_pb2.CoordinatedJob(name=job, num_tasks=cluster_spec.num_tasks(job))
            for job in ("chief", "worker") if job in cluster_spec.jobs]
    seconds = float(os.environ.get("ZOO_HEARTBEAT_TIMEOUT_S", "60"))
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=multi_worker_util.coordination_leader(cluster_spec),
        coordinated_jobs=jobs, heartbeat_timeout_in_ms=int(seconds * 1000))


def check_tf_config():
    """A clear error when ``TF_CONFIG`` is missing or malformed (multi-worker needs it)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise BadInputError(
            "--strategy multiworker needs TF_CONFIG, e.g. on the first machine: TF_CONFIG='{\"cluster\": "
            "{\"worker\": [\"host1:12345\", \"host2:12345\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}' "
            "and index 1 on the second (see README, 'Training on several machines')")
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task = config["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise BadInputError(f"TF_CONFIG is not valid ({error!r}): {raw}") from None
    if task.get("type") not in ("worker", "chief") or not 0 <= index < len(workers) + 1:
        raise BadInputError(f"TF_CONFIG's task {task} does not name one of the workers {workers}")
    return config


def is_chief(strategy):
    """Whether this process writes checkpoints, logs and pictures (worker 0 or the chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (task_type in (None, "worker") and not task_id)


def check_global_batch(batch_size, strategy):
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise BadInputError(f"the global batch size {batch_size} must be divisible by the {replicas} replicas")


def _replica():
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None:  # cross-replica context: this is one whole-batch computation
        return 0, 1
    return context.replica_id_in_sync_group, context.num_replicas_in_sync


def scale_loss(loss):
    """``loss`` (a mean over this replica's examples) divided by the number of replicas.

    Take gradients of the scaled loss: summed over replicas by the optimizer they
    equal the gradient of the mean over the global batch. Log the unscaled loss.
    """
    _, replicas = _replica()
    return loss / replicas if replicas > 1 else loss


def mean_over_global_batch(total, count):
    """``total / count`` of the global batch, where both are sums over this replica's examples (a loss averaged
    over masked entries: real tokens, not padding), as this replica's share: ``replicas x total / global
    count``, so that :func:`scale_loss` and the sum over replicas give what one device computes (a per-replica
    ratio would weigh a replica's entries by its own count)."""
    import tensorflow as tf

    _, replicas = _replica()
    if replicas == 1:
        return total / tf.maximum(count, 1.0)
    count = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, count)
    return replicas * total / tf.maximum(count, 1.0)


def draw_for_global_batch(draw, batch_size):
    """This replica's rows of ``draw(global_batch_size)``.

    Args:
        draw: ``draw(n) -> tensor [n, ...]``, e.g. ``lambda n: keras.random.normal((n, 64), seed=gen)``;
            every replica calls it with the same seed state, so all draw the same tensor.
        batch_size: this replica's batch size (``tf.shape(images)[0]``).
    """
    replica, replicas = _replica()
    if replicas == 1:
        return draw(batch_size)
    start = replica * batch_size
    return draw(batch_size * replicas)[start : start + batch_size]


def clip_by_global_norm(gradients, clip_norm):
    """Scale ``gradients`` so that the global batch's gradient has norm at most ``clip_norm``.

    Use this instead of the optimizer's ``global_clipnorm``: Keras clips each
    replica's partial gradient *before* summing over replicas, so N replicas would
    clip another gradient than one device does. Here the gradients are summed
    first (an extra all-reduce), clipped, and divided by N again, because the
    optimizer still sums what it is given over the replicas.
    """
    import tensorflow as tf

    _, replicas = _replica()
    # embedding gradients come as IndexedSlices; dense, they all-reduce and scale alike
    gradients = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in gradients]
    if replicas > 1:
        gradients = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, gradients)
    clipped, _ = tf.clip_by_global_norm(gradients, clip_norm)
    return [g / replicas for g in clipped] if replicas > 1 else clipped
