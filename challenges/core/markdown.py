"""Markdown written by users, rendered to HTML that cannot run anything, in bounded time.

Two layers: the Markdown parser is built without its raw-HTML support, so ``<script>``
typed by a user is shown as text; then nh3 (the Rust ammonia sanitiser) keeps only an
allow-list of tags and attributes and only http, https and mailto links.

Python-Markdown's link and image patterns look for the closing bracket from every opening one,
so a paragraph of n characters with k brackets costs about k × n steps: 4 000 brackets took
seconds and 50 000 minutes. Before the inline patterns run, :class:`_Guard` reads the block tree
the parser has built and counts that cost and how deep lists and quotes nest; a text over either
bound is never parsed inline but shown as plain paragraphs, and the forms refuse it with a message
(:func:`problem`). ``docs/performance.md`` has the measurements behind the bounds.
"""

from __future__ import annotations

import html as html_module
import re
import threading
import xml.etree.ElementTree as ET

import markdown as md
import nh3
from markdown.treeprocessors import Treeprocessor
from markdown.util import AtomicString
from markupsafe import Markup

ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "em",
    "strong",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}
MAX_SOURCE = 50_000
# Lists and quotes inside one another; people write three or four.
MAX_NESTING = 20
# Steps of the inline patterns, summed over the texts they read (about a second at most here).
MAX_INLINE_WORK = 2_000_000
NESTING_TAGS = {"ul", "ol", "blockquote"}
# Pages show the same texts again and again (a challenge's description, its criteria): short texts
# keep their HTML in a small per-process cache (at most CACHE_ENTRIES × CACHED_HTML characters).
CACHED_SOURCE = 10_000
CACHED_HTML = 40_000
CACHE_ENTRIES = 512
_cache: dict[str, str] = {}
_cache_lock = threading.Lock()
_local = threading.local()


def _only_absolute_links(element: str, attribute: str, value: str) -> str | None:
    """Keep a link only when it starts with an allowed scheme; relative or odd URLs are dropped
    (browsers remove tabs and newlines inside URLs, so "java\tscript:" must not survive)."""
    if attribute != "href":
        return value
    cleaned = "".join(value.split()).lower()
    return (
        value if cleaned.startswith(("http://", "https://", "mailto:")) and value == value.strip() else None
    )


def _parser() -> md.Markdown:
    """This thread's parser (building one costs as much as a conversion; a parser is not thread-safe)."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = _new_parser()
    return parser.reset()


class TooComplex(Exception):
    """A text the parser would take too long over, or recurse too deep for; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Guard(Treeprocessor):
    """Stops a conversion after the block parser and before the inline patterns when the text nests
    lists and quotes more than MAX_NESTING deep, or would cost the inline patterns more than
    MAX_INLINE_WORK steps (each text they read: its length times one more than its brackets)."""

    def run(self, root: ET.Element) -> None:
        work = 0
        stack = [(root, 0)]
        while stack:
            element, depth = stack.pop()
            depth += element.tag in NESTING_TAGS
            if depth > MAX_NESTING:
                raise TooComplex("nesting")
            for text in (element.text, element.tail):
                if text and not isinstance(text, AtomicString):  # code is not read by the inline patterns
                    work += (text.count("[") + 1) * len(text)
            stack.extend((child, depth) for child in element)
        if work > MAX_INLINE_WORK:
            raise TooComplex("brackets")


def _new_parser() -> md.Markdown:
    parser = md.Markdown(extensions=["tables", "sane_lists"], output_format="html")
    # No raw HTML at all: the block and inline HTML processors are removed, so any tag
    # a user types comes out escaped, as text.
    parser.preprocessors.deregister("html_block")
    parser.inlinePatterns.deregister("html")
    parser.treeprocessors.register(_Guard(parser), "guard", 30)  # before "inline" (20)
    return parser


def problem(source: str | None) -> str | None:
    """Why *source* cannot be shown as Markdown ("nesting" or "brackets"), or None when it can."""
    if not source:
        return None
    try:
        _html(source[:MAX_SOURCE])
    except TooComplex as exc:
        return exc.reason
    return None


def render(source: str | None) -> Markup:
    """Safe HTML for *source*; headings start at h2 so a user cannot add a page title."""
    if not source:
        return Markup("")
    source = source[:MAX_SOURCE]
    html = _cache.get(source)
    if html is None:
        try:
            html = _html(source)
        except TooComplex:
            html = _plain(source)  # a text stored before the forms refused it still shows, as written
        if len(source) <= CACHED_SOURCE and len(html) <= CACHED_HTML:
            with _cache_lock:
                while len(_cache) >= CACHE_ENTRIES:
                    del _cache[next(iter(_cache))]  # the oldest entry
                _cache[source] = html
    return Markup(html)  # noqa: S704 - sanitised by nh3 in _html


def _plain(source: str) -> str:
    """*source* as escaped paragraphs, line breaks kept: what a text too complex to parse shows."""
    paragraphs = (p.strip("\n") for p in re.split(r"\n[ \t]*\n", source))
    return "".join(
        f"<p>{html_module.escape(p).replace(chr(10), '<br>' + chr(10))}</p>\n"
        for p in paragraphs
        if p.strip()
    )


def _html(source: str) -> str:
    try:
        html = _parser().convert(source)
    except RecursionError:
        _local.parser = None  # a conversion that fails midway leaves state that reset() does not clear
        raise TooComplex("nesting") from None
    except BaseException:
        _local.parser = None
        raise
    html = html.replace("<h1>", "<h2>").replace("</h1>", "</h2>")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="nofollow noopener noreferrer",
        strip_comments=True,
        attribute_filter=_only_absolute_links,
    )
