"""Clear errors for wrong model inputs, before TensorFlow sees them."""

from zoo.core.runtime.errors import BadInputError


def check_float_input(value, name, shape):
    """Reject ``value`` unless it is a float array whose shape fits ``shape`` (None = any size).

    Works on NumPy arrays, eager tensors and the symbolic tensors of a trace.
    Returns the value cast to float32.
    """
    from keras import ops

    dtype = getattr(value, "dtype", None)
    dtype_name = getattr(dtype, "name", str(dtype))
    if dtype is None or "float" not in dtype_name:
        raise BadInputError(f"{name} must be a float32 array, got dtype {dtype_name}")
    actual = tuple(value.shape)
    if len(actual) != len(shape) or any(want is not None and got is not None and want != got
                                        for want, got in zip(shape, actual)):
        pretty = ", ".join("batch" if d is None else str(d) for d in shape)
        raise BadInputError(f"{name} must have shape [{pretty}], got {list(actual)}")
    return ops.cast(value, "float32")


def check_label_input(value, name, num_classes):
    """Reject ``value`` unless it is an int32 ``[batch]`` array of labels in ``0..num_classes-1``.

    The range is checked on concrete values (NumPy arrays, eager tensors); a traced
    tensor's range is the exported signature's job (in-graph asserts). Returns int32.
    """
    import numpy as np
    from keras import ops

    dtype = getattr(value, "dtype", None)
    dtype_name = getattr(dtype, "name", str(dtype))
    if dtype is None or dtype_name != "int32":
        raise BadInputError(f"{name} must be an int32 array of labels 0-{num_classes - 1}, got dtype {dtype_name}")
    if len(value.shape) != 1:
        raise BadInputError(f"{name} must have shape [batch], got {list(value.shape)}")
    try:
        concrete = np.asarray(value)
    except (TypeError, ValueError, NotImplementedError):  # a symbolic tensor
        concrete = None
    if concrete is not None and concrete.dtype != object and concrete.size and \
            (concrete.min() < 0 or concrete.max() >= num_classes):
        raise BadInputError(f"{name} must be in 0-{num_classes - 1}, got values from {concrete.min()} "
                            f"to {concrete.max()}")
    return ops.cast(value, "int32")
