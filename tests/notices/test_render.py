import re

import pytest

from notices.render import to_html


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert('x')</script>",
        "[Click me](javascript:alert(1))",
        '<a href="https://example.org" onclick="alert(1)">link</a>',
        '<img src="x" onerror="alert(1)">',
        '<p onmouseover="alert(1)">hover</p>',
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "[x](JaVaScRiPt:alert(1))",
        "<iframe src='https://evil.example'></iframe>",
    ],
)
def test_dangerous_local_wording_is_escaped_or_stripped_never_live(text):
    html = to_html(text).lower()
    assert "<script" not in html
    assert "<img" not in html and "<iframe" not in html and "<p onmouseover" not in html
    assert 'href="javascript:' not in html and 'href="data:' not in html
    assert not re.search(r"<[a-z]+[^>]*\son\w+=", html)  # no live event handler attribute


def test_event_handler_attributes_never_reach_a_tag():
    html = to_html('<a href="https://example.org" onclick="alert(1)">link</a> [ok](https://nhs.uk)')
    assert html.count("<a ") == 1  # only the Markdown link is a link
    assert '<a href="https://nhs.uk" rel="noopener noreferrer">ok</a>' in html
    assert "&lt;a href" in html


def test_the_safe_subset_of_markdown_is_rendered():
    html = to_html(
        "**Bold** and *italic*\n\n- one\n- two\n\n1. first\n2. second\n\n"
        "[NHS](https://www.nhs.uk) [email](mailto:dpo@example.nhs.uk) [call](tel:01234567890)"
    )
    for fragment in (
        "<strong>Bold</strong>",
        "<em>italic</em>",
        "<ul>\n<li>one</li>",
        "<ol>\n<li>first</li>",
        'href="https://www.nhs.uk"',
        'href="mailto:dpo@example.nhs.uk"',
        'href="tel:01234567890"',
    ):
        assert fragment in html


def test_headings_and_images_are_not_part_of_the_subset():
    html = to_html("# Big heading\n\n![alt](https://example.org/x.png)")
    assert "<h1" not in html and "<img" not in html
