"""The hashed set of NHS numbers answers exactly as a binary search of its sorted arrays."""

from __future__ import annotations

import numpy as np
import pytest

from phm_portal.lib import number_hash
from phm_portal.lib.number_hash import HashedNumbers


def searched(numbers: np.ndarray, flags: np.ndarray, ids: np.ndarray):
    """What np.searchsorted in the sorted arrays says: the answer to agree with."""
    if not len(numbers):
        nothing = np.zeros(len(ids), dtype=bool)
        return nothing, nothing
    at = np.minimum(np.searchsorted(numbers, ids), len(numbers) - 1)
    found = numbers[at] == ids
    return found, found & flags[at]


def a_set(size: int, seed: int, low: int = 4_000_000_000, high: int = 9_999_999_999):
    rng = np.random.default_rng(seed)
    numbers = np.unique(rng.integers(low, high, size))
    flags = rng.random(len(numbers)) < 0.1
    return numbers, flags, rng


@pytest.mark.parametrize("size", [1, 2, 3, 17, 1000, 200_000])
def test_it_agrees_with_a_binary_search(size):
    numbers, flags, rng = a_set(size, seed=size)
    asked = np.concatenate(
        [
            numbers,  # every member
            numbers + 1,  # neighbours, mostly not members
            rng.integers(0, 10**10, 5000),  # anything below 10**10
            np.array([0, 1, 10**10 - 1, 2**34 - 1, -1]),
        ]
    )
    rng.shuffle(asked)
    found, flag = HashedNumbers(numbers, flags).look_up(asked)
    want_found, want_flag = searched(numbers, flags, asked)
    assert (found == want_found).all()
    assert (flag == want_flag).all()
    assert found[np.isin(asked, numbers)].all()
    assert flag.sum() == want_flag.sum() > 0 or not flags.any()


def test_long_runs_and_the_end_of_the_table():
    """Numbers that share a home slot make long runs, some past the table's last home
    slot: every one is found, however far from its home, and the probes end."""
    numbers, flags, rng = a_set(100_000, seed=7)
    homes_of = HashedNumbers(numbers, flags)._homes  # the hash of a set of this size
    top = (1 << HashedNumbers(numbers, flags)._bits) - 1
    candidates = rng.integers(4_000_000_000, 9_999_999_999, 6_000_000)
    last = np.unique(candidates[homes_of(candidates) == top])[:12]  # at home in the last slot
    assert len(last) == 12
    numbers = np.unique(np.concatenate([numbers, last]))
    flags = rng.random(len(numbers)) < 0.5
    hashed = HashedNumbers(numbers, flags)
    assert hashed._bits == HashedNumbers(numbers[:100_000], flags[:100_000])._bits
    taken = np.flatnonzero(hashed._table != number_hash._EMPTY)
    assert taken.max() > top + 8, "the run goes past the end, far"
    for asked in (last, last + 1, numbers, numbers - 1):
        found, flag = hashed.look_up(asked)
        want = searched(numbers, flags, asked)
        assert (found == want[0]).all() and (flag == want[1]).all()
    found, _ = hashed.look_up(last)
    assert found.all()


def test_empty_sets_and_batches():
    empty = HashedNumbers(np.zeros(0, np.int64), np.zeros(0, bool))
    found, flag = empty.look_up(np.array([9434765919, 0]))
    assert not found.any() and not flag.any()
    numbers, flags, _ = a_set(10, seed=3)
    found, flag = HashedNumbers(numbers, flags).look_up(np.zeros(0, np.int64))
    assert len(found) == len(flag) == 0
    with pytest.raises(ValueError, match="one flag per number"):
        HashedNumbers(numbers, flags[:-1])


def test_it_holds_each_number_once_and_is_two_thirds_full_at_most():
    numbers, flags, _ = a_set(1_000_000, seed=11)
    hashed = HashedNumbers(numbers, flags)
    used = (hashed._table != number_hash._EMPTY).sum()
    assert used == len(numbers)
    assert used / (1 << hashed._bits) <= 2 / 3
    assert hashed.nbytes == 8 * len(hashed._table) <= 8 * ((1 << hashed._bits) + 64)
