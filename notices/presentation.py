"""What the pages, the PDF and the API show of a version: safe HTML, plain text, readability, diff."""

from __future__ import annotations

import difflib
import html
import re
from dataclasses import dataclass

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from notices import readability
from notices.generator import ANNEX_SECTIONS, area_is_named
from notices.models import NoticeVersion
from notices.render import to_html, to_plain

# The contents list of the public page names each section in a few words: it is read too.
CONTENTS_LABELS = {
    "changes": "What has changed",
    "about": "About",
    "controllers": "Who decides",
    "purposes": "Why it is used",
    "legal_basis": "The law",
    "sources": "Where it comes from",
    "pseudonymisation": "The code",
    "recipients": "Who gets it",
    "overseas": "Overseas",
    "retention": "How long it is kept",
    "rights": "Your rights",
    "opt_out": "Opting out",
    "complaints": "Complaints",
}


@dataclass(frozen=True)
class RenderedSection:
    key: str
    title: str
    generated_html: SafeString
    local_html: SafeString
    # The verbatim law: behind an expanding section on the page, an annex in the PDF.
    annex: bool = False

    @property
    def contents_label(self) -> str:
        return CONTENTS_LABELS.get(self.key, self.title)


def rendered_sections(
    version: NoticeVersion, *, marked: dict[str, list[str]] | None = None
) -> list[RenderedSection]:
    """Return the version's sections as safe HTML, leaving out those with nothing to say.

    `marked` maps a section's key to sentences to mark as hard to read (the draft page).
    """
    marked = marked or {}
    out = []
    for s in version.sections:
        generated = to_html(s.get("generated_text", ""))
        local = to_html(s.get("local_text", ""))
        if not (generated or local):
            continue
        if marked.get(s["key"]):
            generated = mark_sentences(generated, marked[s["key"]])
            local = mark_sentences(local, marked[s["key"]])
        # to_html's output has passed nh3's allow-list: only the Markdown subset's tags;
        # mark_sentences escapes every piece of text it rewrites.
        out.append(
            RenderedSection(
                s["key"],
                s["title"],
                mark_safe(generated),  # noqa: S308
                mark_safe(local),  # noqa: S308
                annex=s["key"] in ANNEX_SECTIONS,
            )
        )
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


def read_first_text(sections: list[dict]) -> str:
    """Return what a patient reads first as plain text: titles and sections, one paragraph a
    line, the verbatim law (ANNEX_SECTIONS) left out."""
    parts = []
    for s in sections:
        if s["key"] in ANNEX_SECTIONS:
            continue
        body = section_plain(s)
        if body:
            parts.append(s["title"] + "\n" + body)
    return "\n".join(parts)


# --- how easy it is to read -------------------------------------------------------------
# The draft page marks the sentences above this grade (a reading age of 14), hardest first.
HARD_SENTENCE_GRADE = 9.0
HARD_SENTENCES_SHOWN = 6


@dataclass(frozen=True)
class HardSentence:
    text: str
    score: readability.Score
    section_key: str
    section_title: str


@dataclass(frozen=True)
class SectionReadability:
    key: str
    title: str
    score: readability.Score | None
    hard: list[HardSentence]


@dataclass(frozen=True)
class NoticeReadability:
    """The score of what a patient reads first, section by section, and its hardest sentences."""

    score: readability.Score | None
    sections: list[SectionReadability]
    hardest: list[HardSentence]

    def marked(self) -> dict[str, list[str]]:
        """Return the hardest sentences by section key, for rendered_sections."""
        out: dict[str, list[str]] = {}
        for h in self.hardest:
            out.setdefault(h.section_key, []).append(h.text)
        return out


def notice_readability(sections: list[dict]) -> NoticeReadability:
    """Score the read-first text of a version's sections (the verbatim law left out)."""
    per_section, candidates = [], []
    for s in sections:
        if s["key"] in ANNEX_SECTIONS:
            continue
        body = section_plain(s)
        if not body:
            continue
        text = s["title"] + "\n" + body
        for sentence, score in readability.hardest_sentences(
            body, limit=HARD_SENTENCES_SHOWN, above_grade=HARD_SENTENCE_GRADE
        ):
            candidates.append(HardSentence(sentence, score, s["key"], s["title"]))
        per_section.append((s, readability.score(text)))
    candidates.sort(key=lambda h: (-h.score.grade, h.score.ease))
    hardest = candidates[:HARD_SENTENCES_SHOWN]
    return NoticeReadability(
        score=readability.score(read_first_text(sections)),
        sections=[
            SectionReadability(
                s["key"], s["title"], score, [h for h in hardest if h.section_key == s["key"]]
            )
            for s, score in per_section
        ],
        hardest=hardest,
    )


_TAG = re.compile(r"(<[^>]+>)")
_MARK_OPEN = '<mark class="portal-hard-sentence">'


def mark_sentences(safe_html: str, sentences: list[str]) -> str:
    """Wrap each sentence's words in <mark>, piece by piece where links or bold cut across it.

    The first piece says "Hard to read:" to screen readers; the mark is also underlined, so
    that it does not rest on colour alone. Text is unescaped to match and escaped again.
    """
    if not safe_html:
        return safe_html
    tokens = _TAG.split(safe_html)
    texts = [(i, html.unescape(t)) for i, t in enumerate(tokens) if not t.startswith("<")]
    plain, starts = "", []
    for _, t in texts:
        starts.append(len(plain))
        plain += t
    spans = []
    for sentence in sentences:
        pattern = r"\s+".join(re.escape(w) for w in sentence.split())
        found = re.search(pattern, plain) if pattern else None
        if found and not any(a < found.end() and found.start() < b for a, b in spans):
            spans.append((found.start(), found.end()))
    if not spans:
        return safe_html
    for (i, t), offset in zip(texts, starts, strict=True):
        pieces, cursor = [], 0
        for a, b in sorted(spans):
            lo, hi = max(a - offset, 0), min(b - offset, len(t))
            if lo >= hi:
                continue
            pieces.append(escape(t[cursor:lo]))
            hidden = (
                '<span class="nhsuk-u-visually-hidden">Hard to read: </span>'
                if a - offset >= 0
                else ""
            )
            pieces.append(f"{_MARK_OPEN}{hidden}{escape(t[lo:hi])}</mark>")
            cursor = hi
        if pieces:
            pieces.append(escape(t[cursor:]))
            tokens[i] = "".join(pieces)
    return "".join(tokens)


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
