"""Turn a notice's text into safe HTML and plain text, and score how easy it is to read.

Both the generated text and a DPO's local wording are a small subset of Markdown:
paragraphs, **bold**, *italic*, bullet and numbered lists, line breaks and links
(https, http, mailto and tel only). markdown-it-py parses it with raw HTML off, so
any HTML a DPO types comes out as text; nh3 (ammonia) then keeps only the tags and
attributes of that subset, whatever the parser produced. Nothing is ever executed.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

import nh3
import pyphen
from markdown_it import MarkdownIt

ALLOWED_TAGS = {"p", "ul", "ol", "li", "strong", "em", "a", "br"}
ALLOWED_ATTRIBUTES = {"a": {"href"}}
URL_SCHEMES = {"https", "http", "mailto", "tel"}


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    # Only the subset above: no headings (the sections have theirs), images, code, quotes or rules.
    md.disable(["heading", "lheading", "image", "code", "fence", "blockquote", "hr", "html_block"])
    md.disable(["html_inline", "backticks", "entity"])
    return md


def to_html(text: str) -> str:
    """Return the safe HTML of a Markdown-subset text."""
    if not text.strip():
        return ""
    raw = _markdown().render(text)
    return nh3.clean(
        raw,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


def to_plain(text: str) -> str:
    """Return the words of a Markdown-subset text without any markup, one paragraph a line."""
    safe = to_html(text)
    safe = re.sub(r"</(p|li)>|<br>", "\n", safe)
    plain = html.unescape(nh3.clean(safe, tags=set()))
    return re.sub(r"\s*\n\s*", "\n", plain).strip()


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|!])")


def md_escape(value: object) -> str:
    """Escape a value from the database so that Markdown shows it as it is."""
    text = _MD_SPECIAL.sub(r"\\\1", str(value))
    # A line starting "12. " or "- " would become a list item.
    return re.sub(r"^(\d+)\.(\s)", r"\1\\.\2", text)


def md_link(label: str, url: str) -> str:
    """Return a Markdown link whose target cannot break out of the parentheses."""
    target = url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
    return f"[{md_escape(label)}]({target})"


# --- Flesch reading ease ---------------------------------------------------------
# 206.835 - 1.015 * (words / sentences) - 84.6 * (syllables / words), the published
# formula (Flesch 1948). Syllables of words over six letters are counted with the
# hyphenation dictionary of Pyphen (already a WeasyPrint dependency): its break
# points plus one. Shorter words, which the dictionary seldom splits, count their
# groups of vowels less a silent final "e" or "-ed". 60 to 70 is plain English.
_WORD = re.compile(r"[A-Za-z][A-Za-z'’]*")
_SENTENCE_END = re.compile(r"[.!?:;]+(?=\s|$)|\n+")
_VOWEL_GROUPS = re.compile(r"[aeiouy]+")


@lru_cache(maxsize=1)
def _hyphenator() -> pyphen.Pyphen:
    return pyphen.Pyphen(lang="en_GB", left=1, right=1)


@lru_cache(maxsize=20000)
def syllables(word: str) -> int:
    word = word.lower().strip("'’")
    if not word:
        return 0
    if len(word) > 6:
        return len(_hyphenator().positions(word)) + 1
    groups = len(_VOWEL_GROUPS.findall(word))
    silent_end = (word.endswith("e") and not word.endswith(("le", "ee"))) or (
        word.endswith("ed") and not word.endswith(("ted", "ded"))
    )
    if silent_end and groups > 1:
        groups -= 1
    return max(1, groups)


def flesch_reading_ease(text: str) -> float | None:
    """Return the Flesch reading ease of plain text (higher is easier), None if it has no words."""
    words = _WORD.findall(text)
    if not words:
        return None
    sentences = max(1, len([s for s in _SENTENCE_END.split(text) if _WORD.search(s)]))
    total_syllables = sum(syllables(w) for w in words)
    score = 206.835 - 1.015 * (len(words) / sentences) - 84.6 * (total_syllables / len(words))
    return round(score, 1)


def readability_label(score: float | None) -> str:
    """Return how people usually describe a Flesch reading ease score."""
    if score is None:
        return "no text to score"
    for floor, label in (
        (90, "very easy"),
        (80, "easy"),
        (70, "fairly easy"),
        (60, "plain English"),
        (50, "fairly difficult"),
        (30, "difficult"),
    ):
        if score >= floor:
            return label
    return "very difficult"
