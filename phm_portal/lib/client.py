"""The client's address: the one place that decides it, for sign-in lockouts and rate limits."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _canonical(raw: str) -> str:
    """Return the IP address in raw in its canonical form (any port dropped), or ""."""
    text = raw.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 192.0.2.1:443
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:192.0.2.1 is the client 192.0.2.1
    return str(address)


def client_address(request: HttpRequest) -> str:
    """Return the address of the client that sent the request ("" when it is not known).

    Behind the portal's TLS proxy (PHM_BEHIND_TLS_PROXY) it is the last X-Forwarded-For
    entry, the one the proxy appended: the entries before it are whatever the client
    sent, so a client can neither choose its address nor take another's. Without the
    proxy the header is the client's own words and is ignored: REMOTE_ADDR. A request
    that reached the portal around the proxy (no header, or no address in its last
    entry) is known by REMOTE_ADDR too.
    """
    if settings.PHM_BEHIND_TLS_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        address = _canonical(forwarded.rsplit(",", 1)[-1]) if forwarded else ""
        if address:
            return address
    return _canonical(request.META.get("REMOTE_ADDR", "") or "")
