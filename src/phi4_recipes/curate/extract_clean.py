"""Page chrome removal for html_to_text: hidden elements, navigation, banners, link farms.

Class and id names are only hints: a block that holds most of the page's readable text, or the article
itself, stays whatever it is called. Code is never cut by a class name (highlighters call their comment
tokens "comment").
"""

from __future__ import annotations

import functools
import re

from selectolax.lexbor import LexborNode

from phi4_recipes.curate.extract_math import is_attached

DROP_TAGS = (
    "script, style, noscript, template, iframe, object, embed, svg, canvas, video, audio, map, button, "
    "input, select, textarea, dialog, link, meta, rt, rp, figcaption"  # rt/rp: ruby readings, not the base text
)
# Page regions that are chrome unless an unclosed tag made them swallow the article (see `holds_main_content`).
CHROME_TAGS = "nav, aside, footer"
DROP_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "dialog", "alertdialog",
              "menu", "menubar", "toolbar"}
# Matched against each class/id and against its '-'/'_' separated parts.
BOILERPLATE_WORDS = {
    "nav", "navbar", "navigation", "menu", "menubar", "topbar", "breadcrumb", "breadcrumbs", "sidebar",
    "footer", "ad", "ads", "adsbygoogle", "advert", "adverts", "advertisement", "advertising", "sponsored",
    "sponsor", "promo", "cookie", "cookies", "consent", "gdpr", "newsletter", "subscribe", "subscription",
    "share", "sharing", "sharethis", "social", "related", "byline", "recommended", "trending", "popup", "modal",
    "overlay", "paywall", "disqus", "pagination", "pager", "toc", "noprint", "catlinks", "navbox",
    "printfooter", "editsection", "skip", "jump", "masthead", "signup", "login", "outbrain", "taboola",
    "caption", "credit", "credits", "author", "date", "tags", "comment", "comments", "respond",
}
BOILERPLATE_EXACT = {"comments", "comment-respond", "comments-area", "comment-list", "js-comments-container",
                     "post-comments", "disqus_thread", "mw-jump-link", "reference", "mw-cite-backlink"}
# Elements that only wrap the article body itself; a block containing one is never dropped by its class name.
MAIN_CONTENT_MARKERS = "main, [role=main], [itemprop=articleBody], .entry-content, .post-content, .article-body"
FLAGGABLE = "[class], [id], [role], [style], [hidden], [aria-hidden]"
CODE_TAGS = {"pre", "code"}
LINK_FARM_SHARE = 0.7
LINK_FARM_MAX_CHARS = 3000


def text_length(text: str | None) -> int:
    """len() of the whitespace-collapsed text without building it: str.split runs in C."""
    words = (text or "").split()
    return sum(map(len, words)) + len(words) - 1 if words else 0


def plain_text_length(node: LexborNode) -> int:
    """Characters of text outside links: what a reader reads rather than clicks."""
    total = text_length(node.text(deep=True))
    return total - sum(text_length(link.text(deep=True)) for link in node.css("a"))


def drop_boilerplate(body: LexborNode) -> None:
    """Remove non-content tags, chrome regions, hidden elements and blocks whose names say boilerplate."""
    for node in body.css(DROP_TAGS):
        node.remove()
    page = _PagePlain(body)
    for node in body.css(CHROME_TAGS):
        if is_attached(node) and not holds_main_content(node, page.value):
            node.remove()
    for node in body.css("header"):
        if node.parent is not None and node.parent.tag == "body" and not holds_main_content(node, page.value):
            node.remove()
    for node in body.css(FLAGGABLE):
        attrs = node.attributes  # built anew on every access: read once
        verdict = _flag(attrs)
        if verdict is None or node.tag in ("html", "body", "main") or attrs.get("role") == "main":
            continue
        if not is_attached(node):
            continue
        if verdict == "hidden":
            node.remove()
        elif not _inside_code(node) and not holds_main_content(node, page.value):
            node.remove()


class _PagePlain:
    """The page's readable length, measured only if some flagged block needs the comparison."""

    def __init__(self, body: LexborNode):
        self._body, self._value = body, None

    @property
    def value(self) -> int:
        if self._value is None:
            self._value = plain_text_length(self._body)
        return self._value


def _flag(attrs: dict) -> str | None:
    """"hidden", "named" (role, class or id says chrome) or None."""
    if "style" in attrs or "hidden" in attrs or "aria-hidden" in attrs or "role" in attrs:
        if "hidden" in attrs or attrs.get("aria-hidden") == "true":
            return "hidden"
        style = (attrs.get("style") or "").replace(" ", "").lower()
        if "display:none" in style or "visibility:hidden" in style:
            return "hidden"
        if attrs.get("role") in DROP_ROLES:
            return "named"
    classes, ident = attrs.get("class"), attrs.get("id")
    return "named" if (classes and _names_say_boilerplate(classes)) or (ident and _names_say_boilerplate(ident)) \
        else None


@functools.lru_cache(maxsize=1 << 16)
def _names_say_boilerplate(names: str) -> bool:
    # Cached per class string: pages repeat the same few on thousands of elements.
    return any(map(_name_says_boilerplate, names.lower().split()))


@functools.lru_cache(maxsize=1 << 16)
def _name_says_boilerplate(name: str) -> bool:
    # Cached per name: pages repeat the same few class names on thousands of elements.
    if name in BOILERPLATE_EXACT or name in BOILERPLATE_WORDS:
        return True
    parts = [part for part in re.split(r"[-_]", name) if part]
    # Part matches ("cookie-banner", "share-buttons") count only in short names, so long layout names
    # on content containers ("article-body-with-related-sidebar-spacing") survive.
    return len(parts) <= 3 and any(part in BOILERPLATE_WORDS for part in parts)


def _inside_code(node: LexborNode) -> bool:
    while node is not None:
        if node.tag in CODE_TAGS:
            return True
        node = node.parent
    return False


def holds_main_content(node: LexborNode, page_plain: int) -> bool:
    """A block holding most of the page's readable text, or the article itself: content whatever its name."""
    # Layout wrappers ("content-sidebar-wrap", "l-sidebar-fixed") and WordPress article classes ("tag-sponsor")
    # carry the same words as real chrome.
    threshold = 0.4 * page_plain
    if node.css_first(MAIN_CONTENT_MARKERS) is not None:
        return True
    # Most flagged blocks are small: their whole text is under the bar, so links need not be measured.
    return text_length(node.text(deep=True)) > threshold and plain_text_length(node) > threshold


def drop_link_dense_blocks(root: LexborNode) -> None:
    """Remove lists and short blocks that are mostly links: menus, tag clouds, "see also" link farms."""
    for node in root.css("ul, ol, dl, p, div, td, table"):
        tag = node.tag
        links = node.css("a")
        if len(links) < (2 if tag == "p" else 3):
            continue
        text_len = text_length(node.text(deep=True))
        if text_len == 0 or text_len > LINK_FARM_MAX_CHARS:
            continue
        link_len = sum(text_length(link.text(deep=True)) for link in links)
        if link_len <= LINK_FARM_SHARE * text_len:
            continue
        if not is_attached(node) or node.css_first("pre, math, table table") is not None:
            continue
        if tag in ("td", "table") and in_labelled_table(node):
            continue  # infobox values are often all links; a table with header cells is data, not a menu
        node.remove()


def in_labelled_table(node: LexborNode) -> bool:
    """Inside a table with header cells of its own (a layout table around a data table is still layout)."""
    table = node
    while table is not None and table.tag != "table":
        table = table.parent
    return table is not None and any(owning_table_id(th) == table.mem_id for th in table.css("th"))


def owning_table_id(row: LexborNode) -> int | None:
    node = row.parent
    while node is not None and node.tag != "table":
        node = node.parent
    return node.mem_id if node is not None else None
