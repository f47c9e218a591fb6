"""Clear errors for wrong model inputs, before TensorFlow sees them."""

from zoo.core.errors import BadInputError


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
