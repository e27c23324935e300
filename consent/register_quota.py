"""The hourly quota of NHS numbers each person may ask the opt-out register about.

Counted per person in the shared cache, in a window of an hour that opens with their
first counted call: the window's start is one key (added once, expiring after the
hour), the numbers asked in it another key named after that start. A call takes its
numbers with one increment and gives them back if that went over the quota, so two
calls at once can never both pass on the same headroom: Redis increments atomically
(INCRBY); the file-based cache reads then writes, so there a lock file beside the
cache serialises the processes of the one machine that share it.
"""

from __future__ import annotations

import fcntl
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.filebased import FileBasedCache

from governance.models import User
from phm_portal.errors import DomainError

WINDOW_SECONDS = 3600
_PREFIX = "consent:register-quota"
_LOCK_FILE = "consent-register-quota.lock"


class RegisterQuotaExceeded(DomainError):
    """The person has asked about as many NHS numbers as the hour allows (429)."""

    status_code = 429

    def __init__(self, message: str, *, quota: int, used: int, retry_after: int) -> None:
        super().__init__(message, field="nhs_numbers")
        self.quota = quota
        self.used = used
        self.retry_after = retry_after


@dataclass(frozen=True)
class Taken:
    """Numbers counted against a person's quota, to give back if the call is refused."""

    key: str
    count: int


def register_quota_of(user: User) -> int:
    """Return how many NHS numbers an hour the person may ask the register about."""
    if user.can("read_all"):
        return settings.PHM_REGISTER_CHECK_ADMIN_NUMBERS_PER_HOUR
    return settings.PHM_REGISTER_CHECK_NUMBERS_PER_HOUR


@contextmanager
def _serialised() -> Iterator[None]:
    backend = caches["default"]
    if not isinstance(backend, FileBasedCache):
        yield  # Redis (and the per-process memory cache) add atomically
        return
    folder = os.path.abspath(settings.CACHES["default"]["LOCATION"])
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, _LOCK_FILE), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _window_start(user_key: str, now: float) -> int:
    """Return when the person's current window opened, opening one now if none is."""
    cache = caches["default"]
    key = f"{user_key}:window"
    for _ in range(3):
        cache.add(key, int(now), timeout=WINDOW_SECONDS)
        start = cache.get(key)
        if start is not None:
            return int(start)
    return int(now)  # pragma: no cover - the key expired three times in a row


def _add(key: str, count: int) -> int:
    cache = caches["default"]
    # The count outlives its window a little: an increment never finds it just expired.
    cache.add(key, 0, timeout=WINDOW_SECONDS + 60)
    try:
        return cache.incr(key, count)
    except ValueError:  # gone between add and incr (evicted)
        cache.set(key, count, timeout=WINDOW_SECONDS + 60)
        return count


def register_quota_take(*, user: User, count: int) -> Taken:
    """Count these numbers against the person's hourly quota, or raise RegisterQuotaExceeded.

    1. Find (or open) the person's window of an hour.
    2. Add the numbers to the window's count in one increment.
    3. Over the quota: give them back and refuse, saying when the window frees.
    """
    quota = register_quota_of(user)
    user_key = f"{_PREFIX}:{user.pk}"
    now = time.time()
    with _serialised():
        start = _window_start(user_key, now)
        key = f"{user_key}:{start}"
        total = _add(key, count)
        if total <= quota:
            return Taken(key, count)
        caches["default"].decr(key, count)
    used = total - count
    retry_after = max(1, math.ceil(start + WINDOW_SECONDS - now))
    alone = count > quota
    raise RegisterQuotaExceeded(
        f"The quota is {quota:,} NHS numbers an hour per person: you have asked about "
        f"{used:,} in this hour and this call has {count:,}"
        + (" (more than the quota on its own: send fewer numbers per call)" if alone else "")
        + f". Try again in {retry_after} seconds.",
        quota=quota,
        used=used,
        retry_after=retry_after,
    )


def register_quota_give_back(taken: Taken) -> None:
    """Give back the numbers of a call that was refused after they were counted."""
    # A window that has ended meanwhile has nothing to give back to (ValueError).
    with _serialised(), suppress(ValueError):
        caches["default"].decr(taken.key, taken.count)
