"""Publish a first version of each demo region's notice, as that region's demo DPO (idempotent)."""

from __future__ import annotations

from governance.demo import SLUGS
from governance.models import Programme, User
from notices import services
from notices.models import NoticeVersion


def load(*, stdout) -> None:
    published = already = 0
    for slug in SLUGS:
        programme = Programme.objects.filter(slug=slug).first()
        dpo = User.objects.filter(username=f"dpo-{slug}").first()
        if programme is None or dpo is None:
            continue
        if NoticeVersion.objects.filter(
            notice__programme=programme, status=NoticeVersion.Status.PUBLISHED
        ).exists():
            already += 1
            continue
        draft, _ = services.notice_draft_generate(actor=dpo, programme=programme)
        services.notice_version_publish(actor=dpo, version=draft)
        published += 1
    said = f"Notices: {published} published."
    if already:
        said += f" {already} {'was' if already == 1 else 'were'} published already."
    stdout.write(said)
