"""Verifiable lottery: commit to a secret seed, reveal it after the draw, let anyone re-run it.

Protocol
1. When a request window opens: `seed = new_seed()` (32 secure random bytes) is stored secretly and
   `commitment(seed)` = SHA-256(seed) as hex is published.
2. At the close the allocation runs with the seed, then the seed is revealed (hex).
3. Anyone checks `verify(seed_hex, commitment_hex)` and re-runs the allocation, which is a pure
   function of the requests, the F values and the seed.

Randomness derived from the seed (no other source is used):
- a participant's ticket in a draft round is
  HMAC-SHA256(key=seed, msg="fablab-draw-v1|round|<r>|member|<participant>") ; inside a priority band
  participants pick in ascending order of ticket (compared as bytes / hex). The participant is the
  member's random label in that window (published in the trace), never the member id: with a revealed
  seed anyone could recompute a pseudonym made from ids.
- `DrawRng` is a general PRNG in HMAC-SHA256 counter mode: block i = HMAC-SHA256(seed, label || i as
  8 bytes big-endian); integers are taken 8 bytes at a time, `below(n)` uses rejection sampling, and
  `shuffle` is Fisher-Yates from the end (j = below(i + 1) for i = n-1 .. 1).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Hashable, MutableSequence
from typing import Any

TICKET_PREFIX = "fablab-draw-v1"


def new_seed() -> bytes:
    return secrets.token_bytes(32)


def commitment(seed: bytes) -> str:
    return hashlib.sha256(seed).hexdigest()


def verify(seed_hex: str, commitment_hex: str) -> bool:
    """True when the revealed seed hashes to the published commitment."""
    try:
        seed = bytes.fromhex(seed_hex.strip())
    except ValueError:
        return False
    return hmac.compare_digest(commitment(seed), commitment_hex.strip().lower())


def ticket(seed: bytes, round_no: int, member_id: Hashable) -> bytes:
    msg = f"{TICKET_PREFIX}|round|{round_no}|member|{member_id}".encode()
    return hmac.new(seed, msg, hashlib.sha256).digest()


class DrawRng:
    """Deterministic random numbers from a revealed seed (HMAC-SHA256 counter mode)."""

    def __init__(self, seed: bytes, label: str = "rng") -> None:
        self._seed = seed
        self._label = label.encode()
        self._counter = 0
        self._buffer = b""

    def _bytes(self, n: int) -> bytes:
        while len(self._buffer) < n:
            msg = self._label + self._counter.to_bytes(8, "big")
            block = hmac.new(self._seed, msg, hashlib.sha256).digest()
            self._buffer += block
            self._counter += 1
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def u64(self) -> int:
        return int.from_bytes(self._bytes(8), "big")

    def below(self, n: int) -> int:
        """Uniform integer in [0, n) without modulo bias."""
        if n <= 0:
            raise ValueError("n must be positive")
        limit = (1 << 64) - (1 << 64) % n
        while True:
            x = self.u64()
            if x < limit:
                return x % n

    def random(self) -> float:
        return (self.u64() >> 11) / float(1 << 53)

    def shuffle(self, items: MutableSequence[Any]) -> None:
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]
