"""The public notice pages, cached until the next publication or withdrawal.

The cache holds, per programme, a pointer to its current version (number and
content hash); page keys include both, so a new publication can never serve an
old page. Publishing or withdrawing deletes the pointer (services, on commit).
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.cache import cache

# No expiry: the entries are dropped when what they describe changes.
TIMEOUT = None
NONE = "-"  # "no published version", cached too so that unknown slugs stay cheap
# Part of every page key: bump it when the public templates change what a page shows, so
# that pages cached (without expiry) before a deployment are not served after it.
LAYOUT = 4


def _pointer_key(slug: str) -> str:
    return f"notices:current:{slug}"


def current_pointer(
    slug: str, compute: Callable[[], tuple[int, str] | None]
) -> tuple[int, str] | None:
    """Return (number, sha256) of the programme's current version, from the cache if there."""
    key = _pointer_key(slug)
    value = cache.get(key)
    if value is None:
        found = compute()
        cache.set(key, NONE if found is None else f"{found[0]}:{found[1]}", TIMEOUT)
        return found
    if value == NONE:
        return None
    number, sha = value.split(":", 1)
    return int(number), sha


def page(key: str, build: Callable[[], bytes]) -> bytes:
    """Return the cached body under key, building and storing it on a miss."""
    key = f"{key}:layout{LAYOUT}"
    body = cache.get(key)
    if body is None:
        body = build()
        cache.set(key, body, TIMEOUT)
    return body


def forget(slug: str) -> None:
    """Drop the programme's pointer: its next request finds the new current version."""
    cache.delete(_pointer_key(slug))
