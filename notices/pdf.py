"""The PDF of a notice version: WeasyPrint, tagged (PDF/UA-1) and titled."""

from __future__ import annotations

import logging

from django.conf import settings
from django.template.loader import render_to_string

from notices import selectors
from notices.models import NoticeVersion
from notices.presentation import area_label, rendered_sections, version_practices

# WeasyPrint reports each layout step at INFO; a log line per page is noise here.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)


def render_pdf(version: NoticeVersion) -> bytes:
    """Return the PDF bytes of the version, with the same content as its web page."""
    from weasyprint import HTML

    html = render_to_string(
        "notices/notice_pdf.html",
        {
            "programme": version.notice.programme,
            "area": area_label(
                version.notice.programme.region, [p["name"] for p in version_practices(version)]
            ),
            "version": version,
            "sections": rendered_sections(version),
            "previous": selectors.previous_public_version(version),
            "demo_mode": settings.DEMO_MODE,
        },
    )
    return HTML(string=html, base_url=str(settings.BASE_DIR)).write_pdf(
        pdf_variant="pdf/ua-1", pdf_tags=True
    )
