"""A deterministic, non-periodic-looking byte stream for large bodies.

The stream is a block of ``BLOCK_LEN`` pseudo-random bytes repeated. The block length is deliberately not a
power of two, so a duplicated, dropped or reordered chunk of any power-of-two size changes the hash.
Nothing ever holds more than two blocks in memory.
"""
from __future__ import annotations

import functools
import hashlib
import random
from typing import Iterator

BLOCK_LEN = (1 << 20) + 7

_rng = random.Random(0x6A7E)
_BLOCK = _rng.randbytes(BLOCK_LEN)
_DOUBLE = memoryview(_BLOCK + _BLOCK)


def chunks(total: int, chunk_size: int = 1 << 20, offset: int = 0) -> Iterator[memoryview]:
    """Yields the bytes ``[offset, offset + total)`` of the stream, ``chunk_size`` (<= 1 MiB) at a time."""
    chunk_size = max(1, min(chunk_size, BLOCK_LEN))
    position = offset
    end = offset + total
    while position < end:
        size = min(chunk_size, end - position)
        start = position % BLOCK_LEN
        yield _DOUBLE[start:start + size]
        position += size


def data(total: int, offset: int = 0) -> bytes:
    """The bytes ``[offset, offset + total)`` as one object (only for small sizes)."""
    return b"".join(bytes(c) for c in chunks(total, offset=offset))


@functools.lru_cache(maxsize=32)
def sha256(total: int) -> str:
    """The hex SHA-256 of the first ``total`` bytes of the stream (cached: 1 GiB takes ~1-2 s)."""
    digest = hashlib.sha256()
    for chunk in chunks(total):
        digest.update(chunk)
    return digest.hexdigest()
