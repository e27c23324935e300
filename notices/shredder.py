"""What the notices app holds of a programme at its destruction (phm_portal.shredders).

The privacy notice and its versions hold no personal data: they are the public record
of what patients were told, so they are kept, and the certificate says so. Once the keys
are erased the public pages say that the programme's data was destroyed (their cache
is dropped).
"""

from __future__ import annotations

from django.db import transaction

from governance.models import Programme
from notices import cache
from notices.models import NoticeVersion
from phm_portal.shredders import Renew, Shredder


def manifest(programme: Programme, renew: Renew) -> dict:
    versions = NoticeVersion.objects.filter(notice__programme=programme).count()
    return {
        "totals": {"notice_versions_kept": versions},
        "kept": "The privacy notice's versions are kept: they hold no personal data and are "
        "the public record of what patients were told.",
        "lines": [{"label": "Privacy notice versions (kept: no personal data)", "count": versions}],
    }


def erase_keys(programme: Programme, part: dict) -> dict:
    """From now on the public notice pages say that the data was destroyed."""
    slug = programme.slug
    transaction.on_commit(lambda: cache.forget(slug))
    return {"public_pages": "refreshed to say the data was destroyed"}


SHREDDER = Shredder(
    app="notices",
    holds="The privacy notice and its versions: kept (no personal data); the public pages "
    "say the data was destroyed.",
    manifest=manifest,
    erase_keys=erase_keys,
)
