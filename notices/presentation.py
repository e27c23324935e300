"""What the pages, the PDF and the API show of a version: safe HTML, plain text, score, diff."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from notices.generator import area_is_named
from notices.models import NoticeVersion
from notices.render import flesch_reading_ease, readability_label, to_html, to_plain


@dataclass(frozen=True)
class RenderedSection:
    key: str
    title: str
    generated_html: SafeString
    local_html: SafeString


def rendered_sections(version: NoticeVersion) -> list[RenderedSection]:
    """Return the version's sections as safe HTML, leaving out those with nothing to say."""
    out = []
    for s in version.sections:
        generated = to_html(s.get("generated_text", ""))
        local = to_html(s.get("local_text", ""))
        if not (generated or local):
            continue
        # to_html's output has passed nh3's allow-list: only the Markdown subset's tags.
        out.append(RenderedSection(s["key"], s["title"], mark_safe(generated), mark_safe(local)))  # noqa: S308
    return out


def section_plain(section: dict) -> str:
    return "\n".join(
        t
        for t in (
            to_plain(section.get("generated_text", "")),
            to_plain(section.get("local_text", "")),
        )
        if t
    )


def notice_plain_text(version: NoticeVersion) -> str:
    """Return the whole notice as plain text: titles and sections, one paragraph a line."""
    parts = []
    for s in version.sections:
        body = section_plain(s)
        if body:
            parts.append(s["title"] + "\n" + body)
    return "\n".join(parts)


def readability(version: NoticeVersion) -> dict:
    score = flesch_reading_ease(notice_plain_text(version))
    return {"score": score, "label": readability_label(score)}


# --- finding one's way: the area and the practices ------------------------------------
def version_practices(version: NoticeVersion) -> list[dict]:
    """Return the GP practices the version speaks for ({ods, name}, by name), from its facts."""
    found = {
        p["ods"]: {"ods": p["ods"], "name": p["name"]}
        for p in version.facts.get("participants", [])
        if p.get("kind") == "gp_practice"
    }
    return sorted(found.values(), key=lambda p: p["name"])


def area_label(region: str, practice_names: list[str]) -> str:
    """Return what a patient's page calls the programme's area: its region, else its practices.

    A practice's own notice names no area ("Your area"): outside that practice's
    website the practices are the true answer to "whose notice is this?".
    """
    if area_is_named(region):
        return region
    if not practice_names:
        return ""
    if len(practice_names) > 3:
        return f"{practice_names[0]} and {len(practice_names) - 1} other GP practices"
    *first, last = practice_names
    return f"{', '.join(first)} and {last}" if first else last


# --- the diff ----------------------------------------------------------------------
_ADDED = (
    '<ins class="portal-diff__ins"><span class="nhsuk-u-visually-hidden">added: </span>{}</ins>'
)
_REMOVED = (
    '<del class="portal-diff__del"><span class="nhsuk-u-visually-hidden">removed: </span>{}</del>'
)


def _ins(text: str) -> str:
    return format_html(_ADDED, text) if text.strip() else escape(text)


def _del(text: str) -> str:
    return format_html(_REMOVED, text) if text.strip() else escape(text)


def _words_diff(old: str, new: str) -> str:
    a = re.split(r"(\s+)", old)
    b = re.split(r"(\s+)", new)
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(escape("".join(a[i1:i2])))
        if op in ("delete", "replace"):
            out.append(_del("".join(a[i1:i2])))
            if op == "replace":
                out.append(" ")
        if op in ("insert", "replace"):
            out.append(_ins("".join(b[j1:j2])))
    return "".join(out)


def _lines_diff(old: list[str], new: list[str]) -> str:
    out = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out += [format_html("<p>{}</p>", line) for line in new[j1:j2]]
        elif op == "delete":
            out += [f"<p>{_del(line)}</p>" for line in old[i1:i2]]
        elif op == "insert":
            out += [f"<p>{_ins(line)}</p>" for line in new[j1:j2]]
        else:
            pairs = list(zip(old[i1:i2], new[j1:j2], strict=False))
            for before, after in pairs:
                out.append(f"<p>{_words_diff(before, after)}</p>")
            out += [f"<p>{_del(line)}</p>" for line in old[i1 + len(pairs) : i2]]
            out += [f"<p>{_ins(line)}</p>" for line in new[j1 + len(pairs) : j2]]
    return "".join(out)


@dataclass(frozen=True)
class SectionDiff:
    key: str
    title: str
    change: str  # "added", "removed", "changed"
    html: SafeString


def diff_versions(old: NoticeVersion, new: NoticeVersion) -> tuple[list[SectionDiff], int]:
    """Return the sections that changed from old to new (word by word), and how many did not."""
    before = {s["key"]: s for s in old.sections}
    after = {s["key"]: s for s in new.sections}
    order = [s["key"] for s in new.sections] + [k for k in before if k not in after]
    diffs, unchanged = [], 0
    for key in order:
        a = section_plain(before[key]).split("\n") if key in before else []
        b = section_plain(after[key]).split("\n") if key in after else []
        a, b = [x for x in a if x], [x for x in b if x]
        if a == b:
            unchanged += 1 if a else 0
            continue
        title = (after.get(key) or before[key])["title"]
        change = "added" if not a else "removed" if not b else "changed"
        # Every piece of text in the HTML went through escape() or format_html().
        diffs.append(SectionDiff(key, title, change, mark_safe(_lines_diff(a, b))))  # noqa: S308
    return diffs, unchanged
