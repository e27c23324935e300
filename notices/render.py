"""Turn a notice's text into safe HTML and plain text (notices.readability scores it).

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
