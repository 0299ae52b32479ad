"""Stable hashing of ids and "name=value" tokens into a fixed number of buckets.

Python's built-in ``hash()`` of a string is salted per process, so it cannot place an item in
the same bucket in the trainer and in every consumer. blake2b is stable everywhere, and one
16-byte digest yields the two independent hash functions the id embedding sums.

>>> hashed_pairs(["item-1", "item-2"], buckets=1024).shape
(2, 2)
>>> bool((hashed_pairs(["item-1"], 1024) == hashed_pairs(["item-1"], 1024)).all())
True
>>> flat, offsets = hashed_token_bags([["genres=Comedy", "genres=Drama"], []], buckets=64)
>>> flat.shape, offsets.tolist()
((2,), [0, 2])
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

HASH_FUNCTIONS = 2


def _digest_pair(text: str) -> tuple[int, int]:
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
    return int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little")


def hashed_pairs(texts: Sequence[str], buckets: int) -> np.ndarray:
    """Two bucket indices per text, shape (len(texts), 2), int64."""
    pairs = np.empty((len(texts), HASH_FUNCTIONS), dtype=np.int64)
    for row, text in enumerate(texts):
        first, second = _digest_pair(text)
        pairs[row, 0] = first % buckets
        pairs[row, 1] = second % buckets
    return pairs


def hashed_token_bags(bags: Iterable[Sequence[str]], buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """Bags of tokens as (flat bucket indices, start offset of each bag), the layout of
    torch's EmbeddingBag. One hash function suffices: a token table is small and collisions
    between a handful of feature values are rare."""
    flat: list[int] = []
    offsets: list[int] = []
    for bag in bags:
        offsets.append(len(flat))
        flat.extend(_digest_pair(token)[0] % buckets for token in bag)
    return np.asarray(flat, dtype=np.int64), np.asarray(offsets, dtype=np.int64)


def attribute_tokens(attributes: Mapping[str, str] | None) -> list[str]:
    """Demographics as "name=value" tokens, so any attribute schema works unchanged.

    >>> attribute_tokens({"gender": "F", "age": "25"})
    ['age=25', 'gender=F']
    """
    if not attributes:
        return []
    return [f"{name}={value}" for name, value in sorted(attributes.items())]
