"""Markdown (design descriptions, READMEs) to HTML that is safe to put in a page.

Two layers: markdown-it renders CommonMark with raw HTML escaped (not passed through), then nh3
sanitizes with an allow-list, so a renderer bug still cannot produce script or event handlers.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "del", "s", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td", "sup", "sub",
}
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "th": {"style"},
    "td": {"style"},
    "code": {"class"},  # language-xyz from fenced code
}
_URL_SCHEMES = {"http", "https", "mailto"}
MAX_MARKDOWN_CHARS = 200_000


@lru_cache(maxsize=1)
def _renderer() -> MarkdownIt:
    # "commonmark" with html=False escapes any raw HTML; tables and strikethrough are handy for BOMs.
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
        ["table", "strikethrough"]
    )


def render_markdown(text: str) -> str:
    """Sanitized HTML for a Markdown text; links get rel="nofollow noopener", only http(s)/mailto URLs."""
    html = _renderer().render((text or "")[:MAX_MARKDOWN_CHARS])
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        link_rel="nofollow noopener noreferrer",
        filter_style_properties={"text-align"},
        strip_comments=True,
    )
