import hashlib

import pytest

from fablab.domain.lottery import DrawRng, commitment, new_seed, ticket, verify


def test_commitment_is_sha256_of_seed_and_verifies():
    seed = new_seed()
    assert len(seed) == 32
    c = commitment(seed)
    assert c == hashlib.sha256(seed).hexdigest()
    assert verify(seed.hex(), c)
    assert verify(seed.hex().upper(), c.upper())


def test_wrong_or_malformed_seed_fails():
    seed = new_seed()
    c = commitment(seed)
    other = bytes([seed[0] ^ 1]) + seed[1:]
    assert not verify(other.hex(), c)
    assert not verify("not hex", c)


def test_seeds_are_fresh():
    assert new_seed() != new_seed()


def test_ticket_is_documented_hmac():
    import hmac

    seed = bytes(range(32))
    expected = hmac.new(seed, b"fablab-draw-v1|round|3|member|42", hashlib.sha256).digest()
    assert ticket(seed, 3, 42) == expected
    assert ticket(seed, 3, 42) != ticket(seed, 4, 42)


def test_rng_reproducible_from_seed_and_label():
    a, b = DrawRng(b"s" * 32), DrawRng(b"s" * 32)
    assert [a.u64() for _ in range(5)] == [b.u64() for _ in range(5)]
    assert DrawRng(b"s" * 32, "x").u64() != DrawRng(b"s" * 32, "y").u64()


def test_rng_below_and_shuffle():
    rng = DrawRng(b"k" * 32)
    draws = [rng.below(6) for _ in range(3000)]
    assert set(draws) == set(range(6))
    assert all(300 < draws.count(k) < 700 for k in range(6))  # roughly uniform (expected 500)
    items = list(range(20))
    rng2, rng3 = DrawRng(b"q" * 32), DrawRng(b"q" * 32)
    x, y = items[:], items[:]
    rng2.shuffle(x)
    rng3.shuffle(y)
    assert x == y and sorted(x) == items and x != items
    assert 0 <= rng.random() < 1
    with pytest.raises(ValueError):
        rng.below(0)
