from __future__ import annotations

from django.conf import settings


def portal(request) -> dict:
    """Give every template the service name, the demo flag and what the person may do."""
    user = getattr(request, "user", None)
    capabilities: set[str] = set()
    if user is not None and user.is_authenticated:
        capabilities = {
            c
            for c in ("manage_users", "read_audit", "run_pseudonymisation", "manage_programmes")
            if user.can(c)
        }
    return {
        "service_name": "PHM governance portal",
        "demo_mode": settings.DEMO_MODE,
        "capabilities_set": capabilities,
    }
