"""Markdown written by users, rendered to HTML that cannot run anything.

Two layers: the Markdown parser is built without its raw-HTML support, so ``<script>``
typed by a user is shown as text; then nh3 (the Rust ammonia sanitiser) keeps only an
allow-list of tags and attributes and only http, https and mailto links.
"""

from __future__ import annotations

import threading

import markdown as md
import nh3
from markupsafe import Markup

ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li",
    "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}
MAX_SOURCE = 50_000
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
    return value if cleaned.startswith(("http://", "https://", "mailto:")) and value == value.strip() else None


def _parser() -> md.Markdown:
    """This thread's parser (building one costs as much as a conversion; a parser is not thread-safe)."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = _new_parser()
    return parser.reset()


def _new_parser() -> md.Markdown:
    parser = md.Markdown(extensions=["tables", "sane_lists"], output_format="html")
    # No raw HTML at all: the block and inline HTML processors are removed, so any tag
    # a user types comes out escaped, as text.
    parser.preprocessors.deregister("html_block")
    parser.inlinePatterns.deregister("html")
    return parser


def render(source: str | None) -> Markup:
    """Safe HTML for *source*; headings start at h2 so a user cannot add a page title."""
    if not source:
        return Markup("")
    source = source[:MAX_SOURCE]
    html = _cache.get(source)
    if html is None:
        html = _html(source)
        if len(source) <= CACHED_SOURCE and len(html) <= CACHED_HTML:
            with _cache_lock:
                while len(_cache) >= CACHE_ENTRIES:
                    del _cache[next(iter(_cache))]  # the oldest entry
                _cache[source] = html
    return Markup(html)  # noqa: S704 - sanitised by nh3 in _html


def _html(source: str) -> str:
    try:
        html = _parser().convert(source)
    except BaseException:
        _local.parser = None  # a conversion that fails midway leaves state that reset() does not clear
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
