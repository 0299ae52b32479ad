"""How values that SQL has no type for are stored: float32 vectors and ranked pairs.

Vectors are little-endian float32 bytes, so they round-trip bit for bit on any platform.

>>> import numpy as np
>>> decode_vector(encode_vector(np.array([0.5, -1.0]), "pooled_sum"), "pooled_sum").tolist()
[0.5, -1.0]
>>> decode_pairs([[3, 0.5]], int)
((3, 0.5),)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy as np

from streamrec.storage.errors import CorruptRecordError, InvalidRecordError

VECTOR_DTYPE = np.dtype("<f4")

Label = TypeVar("Label", int, str)


def encode_vector(vector: Any, what: str) -> bytes:
    """``what`` names the value in the error, e.g. "user u1: pooled_sum"."""
    array = np.asarray(vector)
    if array.dtype == VECTOR_DTYPE and array.ndim == 1:
        # The common case (a state's own float32 vector): nothing to convert, so no overflow
        # to silence; a consumer batch encodes two vectors per user.
        if not np.isfinite(array).all():
            raise InvalidRecordError(f"{what} has values that are not finite in float32")
        return array.tobytes()
    if array.ndim != 1:
        raise InvalidRecordError(f"{what} must be one-dimensional, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise InvalidRecordError(f"{what} must be numeric, got dtype {array.dtype}")
    # Values beyond float32's range become inf here and are refused just below.
    with np.errstate(over="ignore"):
        converted = array.astype(VECTOR_DTYPE)
    if not np.isfinite(converted).all():
        raise InvalidRecordError(f"{what} has values that are not finite in float32")
    return converted.tobytes()


def decode_vector(blob: bytes, what: str) -> np.ndarray:
    if len(blob) % VECTOR_DTYPE.itemsize:
        raise CorruptRecordError(
            f"{what}: {len(blob)} bytes is not a whole number of float32 values"
        )
    # A writable native-order copy: callers update profiles in place.
    return np.frombuffer(blob, dtype=VECTOR_DTYPE).astype(np.float32)


def encode_pairs(pairs: Iterable[tuple[Label, float]]) -> list[list[Any]]:
    return [[label, float(value)] for label, value in pairs]


def decode_pairs(
    stored: Any, label_type: Callable[[Any], Label]
) -> tuple[tuple[Label, float], ...]:
    try:
        return tuple((label_type(label), float(value)) for label, value in stored)
    except (TypeError, ValueError):
        raise CorruptRecordError(
            f"expected a JSON list of [label, number], got {stored!r:.80}"
        ) from None
