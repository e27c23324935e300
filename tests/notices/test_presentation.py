"""Marking the hardest sentences in a version's safe HTML (notices.presentation)."""

from __future__ import annotations

from notices.presentation import mark_sentences
from notices.render import to_html

HIDDEN = '<span class="nhsuk-u-visually-hidden">Hard to read: </span>'


def test_a_sentence_is_marked_where_it_stands():
    html = to_html("Ask your GP. The processing is necessary for the performance of a task.")
    marked = mark_sentences(html, ["The processing is necessary for the performance of a task."])
    assert marked == (
        f'<p>Ask your GP. <mark class="portal-hard-sentence">{HIDDEN}The processing is '
        "necessary for the performance of a task.</mark></p>\n"
    )


def test_a_sentence_across_bold_and_a_link_is_marked_piece_by_piece():
    html = to_html("**Optum** processes data for [NECS](https://www.necsu.nhs.uk/) only.")
    marked = mark_sentences(html, ["Optum processes data for NECS only."])
    assert marked.count('<mark class="portal-hard-sentence">') == 4  # Optum, NECS, and between
    assert marked.count(HIDDEN) == 1  # said once, at its start
    assert (
        '<strong><mark class="portal-hard-sentence">' + HIDDEN + "Optum</mark></strong>" in marked
    )
    assert '<a href="https://www.necsu.nhs.uk/" rel="noopener noreferrer">' in marked


def test_marking_keeps_text_escaped():
    html = to_html("Write <script>alert(1)</script> to us & wait.")
    marked = mark_sentences(html, ["Write <script>alert(1)</script> to us & wait."])
    assert "<script>" not in marked
    assert "&lt;script&gt;alert(1)&lt;/script&gt; to us &amp; wait." in marked


def test_a_sentence_not_found_leaves_the_html_as_it_was():
    html = to_html("Ask your GP.")
    assert mark_sentences(html, ["Not there at all."]) == html
