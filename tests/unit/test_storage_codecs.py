"""Vectors and ranked pairs survive storage exactly, and bad ones are refused with a reason."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as numpy_strategies

from streamrec.storage.codecs import decode_pairs, decode_vector, encode_pairs, encode_vector
from streamrec.storage.errors import CorruptRecordError, InvalidRecordError

finite_float32_vectors = numpy_strategies.arrays(
    dtype=np.float32,
    shape=st.integers(min_value=0, max_value=64),
    elements=st.floats(allow_nan=False, allow_infinity=False, width=32),
)


@given(finite_float32_vectors)
def test_a_float32_vector_round_trips_bit_for_bit(vector: np.ndarray) -> None:
    decoded = decode_vector(encode_vector(vector, "v"), "v")

    assert decoded.dtype == np.float32
    assert decoded.tobytes() == vector.tobytes()


def test_the_stored_bytes_are_little_endian_float32() -> None:
    big_endian = np.array([1.5, -2.0], dtype=">f4")

    assert encode_vector(big_endian, "v") == np.array([1.5, -2.0], dtype="<f4").tobytes()


def test_a_decoded_vector_can_be_updated_in_place() -> None:
    decoded = decode_vector(encode_vector(np.zeros(3), "v"), "v")

    decoded += 1.0

    assert decoded.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("vector", "reason"),
    [
        (np.zeros((2, 2)), "one-dimensional"),
        (np.array([1.0, np.nan]), "not finite"),
        (np.array([1e39]), "not finite"),
        (np.array(["a"]), "numeric"),
    ],
)
def test_an_unfit_vector_is_refused_with_the_reason(vector: np.ndarray, reason: str) -> None:
    with pytest.raises(InvalidRecordError, match=reason) as refusal:
        encode_vector(vector, "user u7: pooled_sum")

    assert "user u7: pooled_sum" in str(refusal.value)


def test_a_blob_that_is_not_whole_float32_values_is_reported_as_corrupt() -> None:
    with pytest.raises(CorruptRecordError, match="user u7: profile: 5 bytes"):
        decode_vector(b"\x00" * 5, "user u7: profile")


def test_ranked_pairs_round_trip() -> None:
    pairs = [(3, 0.75), (11, 0.125)]

    assert decode_pairs(encode_pairs(pairs), int) == tuple(pairs)


@pytest.mark.parametrize("stored", [[[1]], [["a", "b"]], 5])
def test_malformed_pairs_are_reported_as_corrupt(stored: object) -> None:
    with pytest.raises(CorruptRecordError, match="label, number"):
        decode_pairs(stored, int)
