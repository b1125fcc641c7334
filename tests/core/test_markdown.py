"""User Markdown cannot run anything: an XSS corpus through the renderer, and the page around it."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from challenges.core import markdown
from challenges.core.markdown import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, render

CORPUS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<iframe src=javascript:alert(1)></iframe>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    "<body onload=alert(1)>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<details open ontoggle=alert(1)>",
    "<form action=javascript:alert(1)><button>x</button></form>",
    "<input autofocus onfocus=alert(1)>",
    '<object data="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="></object>',
    "<!--<img src=x onerror=alert(1)>-->",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](  javascript:alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click][ref]\n\n[ref]: javascript:alert(1)",
    "<javascript:alert(1)>",
    "![x](javascript:alert(1))",
    '![x" onerror="alert(1)](http://example.com/x.png)',
    '[x](http://example.com/" onmouseover="alert(1))',
    "`<script>alert(1)</script>`",
    "```\n<script>alert(1)</script>\n```",
    "> <script>alert(1)</script>",
    "| a |\n|---|\n| <img src=x onerror=alert(1)> |",
    "*<b onmouseover=alert(1)>x</b>*",
    "<scr<script>ipt>alert(1)</script>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "\x00<script>alert(1)</script>",
    '<a href="http://example.com" onclick="alert(1)">ok</a>',
    '<base href="javascript:alert(1)//">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "<link rel=stylesheet href=//evil.example/x.css>",
    "<style>body{background:red}</style>",
]
SAFE_SCHEMES = ("http://", "https://", "mailto:")


class Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))


@pytest.mark.parametrize("source", CORPUS)
def test_rendered_markdown_has_no_way_to_run_code(source):
    html = str(render(source))
    parsed = Collector()
    parsed.feed(html)
    for tag, attrs in parsed.tags:
        assert tag in ALLOWED_TAGS, (source, html)
        for name, value in attrs:
            if name == "rel":
                continue
            assert name in ALLOWED_ATTRIBUTES.get(tag, set()), (source, html)
            if name == "href":
                assert value is not None and value.startswith(SAFE_SCHEMES), (source, html)
    lowered = html.lower()
    assert "<script" not in lowered and "<iframe" not in lowered and "<img" not in lowered


def test_raw_html_is_shown_as_text_not_dropped():
    assert "&lt;b&gt;bold&lt;/b&gt;" in str(render("<b>bold</b>"))


def test_ordinary_markdown_still_works():
    html = str(
        render(
            "# Title\n\n**bold**, *em*, [site](https://example.com) and\n\n- a\n- b\n\n| x | y |\n|---|---|\n| 1 | 2 |"
        )
    )
    assert "<h2>Title</h2>" in html and "<strong>bold</strong>" in html and "<em>em</em>" in html
    assert '<a href="https://example.com" rel="nofollow noopener noreferrer">site</a>' in html
    assert "<ul>" in html and "<table>" in html and "<td>1</td>" in html


PATHOLOGICAL = {
    "lists nested 3 000 deep": ("- " * 3000 + "x", "nesting"),
    "quotes nested 3 000 deep": ("> " * 3000 + "x", "nesting"),
    "lists indented 300 deep": ("".join("    " * i + "- x\n" for i in range(300)), "nesting"),
    "100 000 brackets": ("[" * 100_000, "brackets"),
    "the 50 000-character limit of links": ("[a](" * 12_500, "brackets"),
    "images opened and never closed": ("![" * 25_000, "brackets"),
}


@pytest.mark.parametrize(("source", "reason"), PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_a_pathological_text_is_shown_as_written_and_the_next_ones_are_right(source, reason):
    """Such a text is never given to the inline patterns (whose cost grows with the square of the
    brackets): it is shown as escaped text, and the thread's parser is right for the next one."""
    assert markdown.problem(source) == reason
    html = str(render(source))
    assert html == markdown._plain(source[: markdown.MAX_SOURCE])
    assert "<li>" not in html and "<a " not in html and "<blockquote>" not in html
    assert str(render("[x]: https://example.com\n\n[a link][x]")) == (
        '<p><a href="https://example.com" rel="nofollow noopener noreferrer">a link</a></p>'
    )
    assert str(render("> quote\n\npara")) == "<blockquote>\n<p>quote</p>\n</blockquote>\n<p>para</p>"


def test_plain_text_keeps_paragraphs_and_line_breaks_and_escapes_everything():
    assert (
        markdown._plain("<b>a</b>\nb\n\n \n\nc & d\n")
        == "<p>&lt;b&gt;a&lt;/b&gt;<br>\nb</p>\n<p>c &amp; d</p>\n"
    )


def test_what_people_write_is_within_the_bounds():
    nested = "".join("    " * i + f"- level {i}\n" for i in range(markdown.MAX_NESTING))
    assert markdown.problem(nested) is None and str(render(nested)).count("<ul>") == markdown.MAX_NESTING
    too_deep = nested + "    " * markdown.MAX_NESTING + "- one more\n"
    assert markdown.problem(too_deep) == "nesting"
    links = "\n\n".join(
        f"See [the report {i}](https://example.com/{i}) and [its data](https://example.com/d{i})."
        for i in range(500)
    )  # a thousand links, a paragraph each
    assert markdown.problem(links) is None and str(render(links)).count("<a href") == 1000
    table = "| a | b |\n|---|---|\n" + "| [x](https://example.com) | y |\n" * 1000  # each cell read alone
    assert markdown.problem(table) is None and str(render(table)).count("<a href") == 1000
    assert markdown.problem("A paragraph of [" + "text " * 2000 + "]") is None


def test_only_small_renderings_are_kept():
    from challenges.core import markdown

    wide = "|" + "a|" * 300 + "\n|" + "-|" * 300 + "\n" + ("|" + "b|" * 300 + "\n") * 14
    render(wide)
    assert len(wide) <= markdown.CACHED_SOURCE and wide not in markdown._cache  # its HTML is too big
    render("A *short* text.")
    assert "A *short* text." in markdown._cache
