"""What UK GDPR Articles 13 and 14 require a notice to say, and what a version does not say yet.

Each requirement is checked against the facts the version was generated from and
against its sections (a section the requirement needs must be there and say
something). Local wording does not fill a gap: the fact belongs in the programme's
governance data, from which every later version is generated too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from notices.generator import CONTROLLER_ROLES, PROCESSOR_ROLES


@dataclass(frozen=True)
class Requirement:
    article: str
    item: str
    sections: tuple[str, ...]
    met: Callable[[dict], bool]


def _controllers(f: dict) -> list[dict]:
    return [p for p in f["participants"] if p["role"] in CONTROLLER_ROLES]


def _contact_point(f: dict) -> list[dict]:
    """Return the lead controller (the joint controllers' contact point, Art 26), or all."""
    controllers = _controllers(f)
    lead = [p for p in controllers if p["is_lead"]]
    return lead or controllers


def _has_controller_contact(f: dict) -> bool:
    point = _contact_point(f)
    return bool(point) and all(p["website"] or p["dpo_email"] for p in point)


def _has_dpo_contact(f: dict) -> bool:
    point = _contact_point(f)
    return bool(point) and all(p["dpo_email"] for p in point)


def _overseas_stated(f: dict) -> bool:
    prog = f["programme"]
    if prog["overseas_transfer"] == "not_recorded":
        return False
    if prog["overseas_transfer"] in ("idta", "addendum", "adequacy"):
        return bool(prog["overseas_transfer_detail"].strip())
    return True


REQUIREMENTS: list[Requirement] = [
    Requirement(
        "13(1)(a)",
        "identity and contact details of the controller",
        ("controllers",),
        _has_controller_contact,
    ),
    Requirement("13(1)(b)", "contact details of the DPO", ("controllers",), _has_dpo_contact),
    Requirement(
        "13(1)(c)",
        "purposes and legal basis: the purposes of the processing",
        ("purposes",),
        lambda f: bool(f["programme"]["purposes"]),
    ),
    Requirement(
        "13(1)(c)",
        "purposes and legal basis: a lawful basis under Article 6",
        ("legal_basis",),
        lambda f: any(b["regime"] == "uk_gdpr_6" for b in f["legal_bases"]),
    ),
    Requirement(
        "13(1)(c)",
        "purposes and legal basis: a condition under Article 9(2) for health data",
        ("legal_basis",),
        lambda f: any(b["regime"] == "uk_gdpr_9" for b in f["legal_bases"]),
    ),
    Requirement(
        "13(1)(e)",
        "recipients or categories of recipients",
        ("recipients",),
        lambda f: any(p["role"] in PROCESSOR_ROLES | {"recipient"} for p in f["participants"]),
    ),
    Requirement(
        "13(1)(f)",
        "overseas transfers (whether data leaves the UK, and under which safeguard)",
        ("overseas",),
        _overseas_stated,
    ),
    Requirement(
        "13(2)(a)",
        "retention period (or the criteria that set it)",
        ("retention",),
        lambda f: bool(f["programme"]["length_weeks"] or f["programme"]["start_date"]),
    ),
    Requirement(
        "13(2)(b)",
        "rights (access, rectification, erasure, restriction, objection)",
        ("rights", "opt_out"),
        lambda f: True,
    ),
    Requirement("13(2)(d)", "right to complain to the ICO", ("complaints",), lambda f: True),
    Requirement(
        "13(2)(f)",
        "automated decision-making, including profiling",
        ("rights",),
        lambda f: True,
    ),
    Requirement(
        "14(1)(d)",
        "categories of personal data",
        ("sources",),
        lambda f: any(s["categories"] for s in f["sources"]),
    ),
    Requirement("14(2)(f)", "source of the data", ("sources",), lambda f: bool(f["sources"])),
]


def missing_items(*, facts: dict, sections: list[dict]) -> list[dict]:
    """Return [{item, article}] for every requirement the version does not meet, in article order."""
    said = {s["key"] for s in sections if s.get("generated_text", "").strip()}
    missing = []
    for req in REQUIREMENTS:
        ok = all(key in said for key in req.sections) and req.met(facts)
        if not ok:
            missing.append({"item": f"{req.article} {req.item}", "article": req.article})
    return missing
