"""HTML -> Markdown-flavoured text that keeps what pretraining data needs and drops page chrome.

Kept: LaTeX (MathJax scripts, KaTeX/MathJax-3 renderings, Wikipedia math, `<math>` MathML, LaTeX images)
as `$...$` / `$$...$$`; `<pre>`/`<code>` blocks verbatim as fenced code; data tables as Markdown tables;
headings, lists and quotes; forum and Q&A threads as ordered posts with author, score and accepted markers.
Dropped: navigation, headers/footers, ads, cookie banners, share bars, comment widgets, hidden elements and
link-dense blocks. Built on selectolax's lexbor parser, which tolerates any broken markup.
"""

from __future__ import annotations

import functools
import html as html_lib
import re
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser, LexborNode

from phi4_recipes.curate.mathml import mathml_to_latex
from phi4_recipes.curate.threads import find_thread_posts, render_thread_header

# Private-use characters mark where a formula goes; they survive whitespace collapsing untouched.
INLINE_MATH_OPEN, INLINE_MATH_CLOSE = "\ue000", "\ue001"
DISPLAY_MATH_OPEN, DISPLAY_MATH_CLOSE = "\ue002", "\ue003"
LINE_BREAK = "\ue004"
STRIPPED_CHARACTERS = re.compile("[\ue000-\ue004\u00ad]")
STRIPPED_MARKERS = ("\ue000", "\ue001", "\ue002", "\ue003", "\ue004")
# The same characters written as numeric references, which the parser would decode into our markers.
STRIPPED_REFERENCES = re.compile(r"&#(?:[xX]0*[eE]00[0-4]|0*5734[4-8]);")
MATH_PLACEHOLDER = re.compile("( ?)([\ue000\ue002])(\\d+)[\ue001\ue003]( ?)")

DROP_TAGS = (
    "script, style, noscript, template, iframe, object, embed, svg, canvas, video, audio, map, button, "
    "input, select, textarea, dialog, link, meta, rt, rp, figcaption"  # rt/rp: ruby readings, not the base text
)
# Page regions that are chrome unless an unclosed tag made them swallow the article (see `_holds_main_content`).
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
BOILERPLATE_LINE = re.compile(
    r"^(©|copyright\b|all rights reserved|share (this|on)\b|follow us\b|sign up\b|subscribe\b|"
    r"accept (all )?cookies|we use cookies|read more\b|advertisement$|best viewed (in|with)\b)", re.IGNORECASE)
# Elements that only wrap the article body itself; a block containing one is never dropped by its class name.
MAIN_CONTENT_MARKERS = "main, [role=main], [itemprop=articleBody], .entry-content, .post-content, .article-body"
CONTENT_ROOT_SELECTORS = ("main", "[role=main]", "#mw-content-text", "#content", "#main-content",
                          ".post-content", ".entry-content", ".article-body", ".article-content", "#main")
BLOCK_TAGS = {
    "p", "div", "section", "article", "main", "header", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol",
    "li", "dl", "dt", "dd", "pre", "table", "blockquote", "figure", "figcaption", "hr", "form", "fieldset",
    "address", "details", "summary", "center", "body", "html", "tbody", "thead", "tfoot", "tr", "td", "th",
    "caption", "legend", "hgroup", "search",
}
INLINE_CODE_TAGS = {"code", "span", "b", "i", "em", "strong", "a", "var", "kbd", "samp", "font"}
CODE_LINE_CLASSES = {"line", "code-line", "cm-line", "highlight-line", "hljs-ln-line", "token-line"}
CODE_LANGUAGE = re.compile(r"(?:language|lang|highlight-source|highlight|brush:)[-\s]?([a-z][\w+#-]*)", re.I)
TEX_DELIMITERS = re.compile(r"\\\((.+?)\\\)|\\\[(.+?)\\\]", re.S)
DISPLAYSTYLE = re.compile(r"^\{\\displaystyle\s*(.*)\}$", re.S)
CONTENT_BLOCK_CHARS = 100  # a block this long with a sentence end anywhere, or
CONTENT_SENTENCE_CHARS = 40  # a block this long that ends a sentence, is running text
SENTENCE_END = re.compile(r"[.!?。！？…]")
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
# Share of the page's readable text the posts must hold for the page to be rendered as a thread.
THREAD_MIN_TEXT_SHARE = 0.4
DENSE_BLOCK_CHARS = 80
SHORT_RUN_BLOCKS = 3
DENSE_MIN_TOTAL = 300
DENSE_SHARE = 0.7
LEAD_LEVELS = 99
LEAD_MIN_CHARS = 80
STRUCTURED_MIN_CHARS = 50
STRUCTURED_MAX_LINK_SHARE = 0.2
LEAF_BLOCKS = {"p", "li", "td", "tr", "tbody", "pre", "blockquote"}
FENCED_BLOCK = re.compile(r"(\n\n(?:```|~~~).*?(?:```|~~~)\n\n)", re.S)
WHITESPACE = re.compile(r"[ \t\r\n\f\v\u00a0]+")


@dataclass
class _RenderState:
    """Formulas collected while rendering; the text holds numbered placeholders until the end."""

    formulas: list[str] = field(default_factory=list)

    def math(self, tex: str, display: bool) -> str:
        tex = DISPLAYSTYLE.sub(r"\1", tex.strip())
        self.formulas.append(tex.strip())
        index = len(self.formulas) - 1
        if display:
            return f"{DISPLAY_MATH_OPEN}{index}{DISPLAY_MATH_CLOSE}"
        return f"{INLINE_MATH_OPEN}{index}{INLINE_MATH_CLOSE}"


def html_to_text(html: str, url: str | None = None) -> str:
    """Extract the main content of an HTML page as Markdown-flavoured text.

    Args:
        html (str): the page; any markup, however broken.
        url (str | None): the page URL; only used to recognise sites whose layout needs it (none yet
            beyond what the markup says), kept so callers can pass it uniformly.

    Returns:
        str: the extracted text ("" when the page has no content).
    """
    del url  # layout is read from the markup; the parameter keeps the public signature stable
    if not html or not html.strip():
        return ""
    # Icon fonts put private-use characters in pages; ours mark formulas and line breaks, so the page's go.
    # Soft hyphens are invisible hyphenation hints that would split words for every later filter.
    # Both are rare: a plain substring test (C speed) spares two regex passes over most pages.
    if "\u00ad" in html or any(marker in html for marker in STRIPPED_MARKERS):
        html = STRIPPED_CHARACTERS.sub("", html)
    if "5734" in html or "e00" in html or "E00" in html:
        html = STRIPPED_REFERENCES.sub("", html)
    tree = LexborHTMLParser(html)
    body = tree.body
    if body is None:
        return ""
    state = _RenderState()
    _replace_math(body, state)
    # Thread metadata is read before boilerplate removal, which drops vote widgets and <meta> microdata.
    posts = find_thread_posts(body)
    _drop_boilerplate(body)
    posts = _thread_posts_holding_the_page(posts, body)
    title = _page_title(body)

    blocks: list[str] = []
    if posts:
        if title:
            blocks.append("# " + title)
        for number, post in enumerate(posts, start=1):
            blocks.append(render_thread_header(number, post))
            post_blocks: list[str] = []
            _render_blocks(post.body, post_blocks, state)
            blocks.extend(post_blocks)
    else:
        root = _densest_subtree(_content_root(body))
        _drop_link_dense_blocks(root)
        _render_blocks(root, blocks, state)
        blocks = _drop_tail_after_content(blocks)
        if title and not any(block.startswith("# ") for block in blocks[:3]):
            blocks.insert(0, "# " + title)
    return _finish(blocks, state)


def _thread_posts_holding_the_page(posts: list, body: LexborNode) -> list:
    """The posts, if they are what the page is about; [] when they are a widget beside an article."""
    posts = [post for post in posts if _is_attached(post.body)]
    if len(posts) < 2 and not any(post.role == "question" for post in posts):
        return []
    posts_plain = sum(_plain_text_length(post.element if post.element is not None else post.body) for post in posts)
    return posts if posts_plain >= THREAD_MIN_TEXT_SHARE * _plain_text_length(body) else []


def _is_content_block(block: str) -> bool:
    """A block a reader came for: running text with a sentence end, code, a table or a formula."""
    if block.startswith(("```", "~~~", "| ")) or DISPLAY_MATH_OPEN in block or INLINE_MATH_OPEN in block:
        return True
    if block.startswith("#"):
        return False
    # One CJK character carries about as much as a short word: weigh it as three.
    weight = len(block) + 2 * len(CJK.findall(block))
    if weight >= CONTENT_BLOCK_CHARS and SENTENCE_END.search(block) is not None:
        return True
    return weight >= CONTENT_SENTENCE_CHARS and SENTENCE_END.match(block[-1]) is not None


def _drop_tail_after_content(blocks: list[str]) -> list[str]:
    # After the last block of running text, short blocks are the page's tail: tags, author boxes,
    # "related" headings, share prompts. On real pages they are boilerplate far more often than content.
    content = [_is_content_block(block) for block in blocks]
    last = max((index for index, good in enumerate(content) if good), default=len(blocks) - 1)
    # jusText's neighbour rule for headings: one that introduces running text is kept; headings inside a run
    # of three or more short blocks are teaser titles and section labels ("More on this", "Latest news").
    kept: list[str] = []
    index = 0
    while index <= last:
        end = index
        while end <= last and not content[end]:
            end += 1
        if end - index >= SHORT_RUN_BLOCKS and any(content[:index]):
            kept.extend(block for block in blocks[index:end] if not block.startswith("#"))
        else:
            kept.extend(blocks[index:end])
        if end <= last:
            kept.append(blocks[end])
        index = end + 1
    return kept


def _page_title(body: LexborNode) -> str:
    heading = body.css_first("h1")
    if heading is not None:
        return _collapse(heading.text(deep=True))
    return ""


def _has_chrome_role(node: LexborNode) -> bool:
    return node.attributes.get("role") in DROP_ROLES


def _is_hidden(node: LexborNode) -> bool:
    attrs = node.attributes
    if "hidden" in attrs or attrs.get("aria-hidden") == "true":
        return True
    style = (attrs.get("style") or "").replace(" ", "").lower()
    return "display:none" in style or "visibility:hidden" in style


def _is_boilerplate(node: LexborNode) -> bool:
    """A class or id says boilerplate ("cookie-banner", "share-buttons"); only a hint, see `_drop_boilerplate`."""
    attrs = node.attributes
    return _names_say_boilerplate(f"{attrs.get('class') or ''} {attrs.get('id') or ''}".lower())


@functools.lru_cache(maxsize=8192)
def _names_say_boilerplate(names: str) -> bool:
    # Cached: a page repeats the same few class strings on thousands of elements.
    for name in names.split():
        if name in BOILERPLATE_EXACT or name in BOILERPLATE_WORDS:
            return True
        parts = [part for part in re.split(r"[-_]", name) if part]
        # Part matches ("cookie-banner", "share-buttons") count only in short names, so long layout names
        # on content containers ("article-body-with-related-sidebar-spacing") survive.
        if len(parts) <= 3 and any(part in BOILERPLATE_WORDS for part in parts):
            return True
    return False


def _plain_text_length(node: LexborNode) -> int:
    """Characters of text outside links: what a reader reads rather than clicks."""
    total = _text_length(node.text(deep=True))
    return total - sum(_text_length(link.text(deep=True)) for link in node.css("a"))


def _holds_main_content(node: LexborNode, page_plain: int) -> bool:
    # Class names are a weak signal: layout wrappers ("content-sidebar-wrap", "l-sidebar-fixed",
    # "Page-ad-margins") and WordPress article classes ("tag-sponsor") carry the same words as real chrome.
    # A block that holds most of the page's readable text, or the article itself, is content whatever its name.
    threshold = 0.4 * page_plain
    # Most flagged blocks are small: their whole text is under the bar, so links need not be measured.
    if _text_length(node.text(deep=True)) <= threshold:
        return node.css_first(MAIN_CONTENT_MARKERS) is not None
    return node.css_first(MAIN_CONTENT_MARKERS) is not None or _plain_text_length(node) > threshold


def _drop_boilerplate(body: LexborNode) -> None:
    for node in body.css(DROP_TAGS):
        node.remove()
    page_plain = _plain_text_length(body)
    for node in body.css(CHROME_TAGS):
        if _is_attached(node) and not _holds_main_content(node, page_plain):
            node.remove()
    for node in body.css("header"):
        if node.parent is not None and node.parent.tag == "body" and not _holds_main_content(node, page_plain):
            node.remove()
    for node in body.css("[class], [id], [role], [style], [hidden], [aria-hidden]"):
        if node.tag in ("html", "body", "main") or node.attributes.get("role") == "main" or not _is_attached(node):
            continue
        if _is_hidden(node) or ((_has_chrome_role(node) or _is_boilerplate(node))
                                and not _holds_main_content(node, page_plain)):
            node.remove()


def _is_attached(node: LexborNode) -> bool:
    # Nodes inside an already-decomposed subtree lose their path to <html>.
    while node is not None:
        if node.tag == "html":
            return True
        node = node.parent
    return False


def _content_root(body: LexborNode) -> LexborNode:
    for selector in CONTENT_ROOT_SELECTORS:
        found = body.css(selector)
        if len(found) == 1 and len((found[0].text(deep=True) or "").strip()) > 200:
            return found[0]
    articles = body.css("article")
    if len(articles) == 1 and len((articles[0].text(deep=True) or "").strip()) > 200:
        return articles[0]
    return body


def _running_text_weights(root: LexborNode) -> dict[int, int]:
    """Characters of running text (long, sentence-ending, outside links) under each element, by mem_id.

    One pass over the text nodes: each is credited to its nearest block element, and each block that reads as
    running text credits its length to every ancestor up to `root`.
    """
    block_text: dict[int, list] = {}
    for text_node in root.traverse(include_text=True):
        if text_node.tag != "-text":
            continue
        raw = text_node.text_content
        if not raw or raw.isspace():
            continue
        node = text_node.parent
        in_link = False
        while node is not None and node.tag not in BLOCK_TAGS:
            if node.tag == "a":
                in_link = True
            node = node.parent
        if node is None:
            continue
        entry = block_text.get(node.mem_id)
        if entry is None:
            entry = block_text[node.mem_id] = [node, 0, 0, False]
        length = len(raw.strip())
        if not raw.isascii():
            length += 2 * len(CJK.findall(raw))  # one CJK character carries about as much as a short word
        entry[1] += length
        if in_link:
            entry[2] += length
        elif not entry[3] and SENTENCE_END.search(raw) is not None:
            entry[3] = True
    weights: dict[int, int] = {}
    stop = root.mem_id
    for node, length, link_length, has_sentence in block_text.values():
        plain = length - link_length
        if not has_sentence or plain < DENSE_BLOCK_CHARS or link_length > 0.5 * length:
            continue
        while node is not None:
            weights[node.mem_id] = weights.get(node.mem_id, 0) + plain
            if node.mem_id == stop:
                break
            node = node.parent
    return weights


def _densest_subtree(root: LexborNode) -> LexborNode:
    """The smallest element that still holds nearly all of the page's running text, plus its lead.

    Sidebars, related lists, author boxes and comment sections sit beside the article, so descending while
    one child holds almost all the running text leaves them outside. A teaser paragraph often sits in its
    own container just before the body: running text in earlier siblings near the end of the descent stays.
    """
    weights = _running_text_weights(root)
    total = weights.get(root.mem_id, 0)
    if total < DENSE_MIN_TOTAL:
        return root
    path = [root]
    node = root
    while True:
        best, best_weight = None, 0
        for child in node.iter(include_text=False):
            weight = weights.get(child.mem_id, 0)
            if weight > best_weight:
                best, best_weight = child, weight
        if best is None or best_weight < DENSE_SHARE * weights.get(node.mem_id, 0) or best.tag in LEAF_BLOCKS:
            break
        path.append(best)
        node = best
    top = max(0, len(path) - 1 - LEAD_LEVELS)
    for parent, kept in zip(path[top:], path[top + 1:]):
        before = True
        for child in list(parent.iter(include_text=True)):
            if child.mem_id == kept.mem_id:
                before = False
            elif not (before and (weights.get(child.mem_id, 0) >= LEAD_MIN_CHARS or _is_link_free_list(child))):
                child.remove()
    return path[top]


def _is_link_free_list(node: LexborNode) -> bool:
    """Ingredients, specifications, facts tables: structured content with no sentences, rarely links."""
    if node.tag == "-text" or node.css_first("ul, ol, dl, table") is None:
        return False
    text_len = _text_length(node.text(deep=True))
    if text_len < STRUCTURED_MIN_CHARS:
        return False
    return sum(_text_length(link.text(deep=True)) for link in node.css("a")) <= STRUCTURED_MAX_LINK_SHARE * text_len


def _drop_link_dense_blocks(root: LexborNode) -> None:
    """Remove lists and short blocks that are mostly links: menus, tag clouds, "see also" link farms."""
    for node in root.css("ul, ol, dl, p, div, td, table"):
        if not _is_attached(node) or node.css_first("pre, math, table table") is not None:
            continue
        if node.tag in ("td", "table") and _in_labelled_table(node):
            continue  # infobox values are often all links; a table with header cells is data, not a menu
        text_len = _text_length(node.text(deep=True))
        if text_len == 0 or text_len > 3000:
            continue
        links = node.css("a")
        min_links = 2 if node.tag == "p" else 3
        if len(links) < min_links:
            continue
        link_len = sum(_text_length(link.text(deep=True)) for link in links)
        if link_len / text_len > 0.7:
            node.remove()


def _in_labelled_table(node: LexborNode) -> bool:
    table = node
    while table is not None and table.tag != "table":
        table = table.parent
    # Only the table's own header cells count: a layout table around a data table is still layout.
    return table is not None and any(_owning_table_id(th) == table.mem_id for th in table.css("th"))


def _replace_math(body: LexborNode, state: _RenderState) -> None:
    """Swap every formula rendering for a placeholder holding its TeX source."""
    for node in body.css("mjx-container"):
        math = node.css_first("math")
        display = node.attributes.get("display") == "true"
        _swap(node, state.math(_math_element_tex(math), display) if math is not None else "")
    for node in body.css("script[type^='math/tex'], script[type^='math/asciimath']"):
        display = "mode=display" in (node.attributes.get("type") or "")
        # Script bodies are raw text, but CMSs often entity-escape them anyway (&lt; for <).
        _swap(node, state.math(html_lib.unescape(node.text(deep=True) or ""), display))
    for node in body.css(".MathJax_Preview, .MathJax, .MathJax_Display, .MathJax_SVG, .MathJax_CHTML"):
        if _is_attached(node):
            node.remove()
    for node in body.css(".katex-display, .katex"):
        if not _is_attached(node):
            continue
        annotation = node.css_first("annotation[encoding='application/x-tex']")
        if annotation is not None:
            _swap(node, state.math(annotation.text(deep=True) or "", "katex-display" in _classes(node)))
    for node in body.css(".mwe-math-element"):
        math = node.css_first("math")
        image = node.css_first("img")
        tex = math.attributes.get("alttext") if math is not None else None
        tex = tex or (image.attributes.get("alt") if image is not None else "") or ""
        display = node.css_first(".mwe-math-fallback-image-display") is not None or (
            math is not None and math.attributes.get("display") == "block")
        _swap(node, state.math(tex, display))
    for node in body.css("math"):
        if _is_attached(node):
            display = node.attributes.get("display") == "block" or node.attributes.get("mode") == "display"
            _swap(node, state.math(_math_element_tex(node), display))
    for node in body.css("img.latex, img.tex, img[src*='latex.php'], img[src*='codecogs.com'], "
                         "img.mwe-math-fallback-image-inline"):
        tex = node.attributes.get("alt") or ""
        if tex:
            _swap(node, state.math(tex, "display" in (node.attributes.get("class") or "")))


def _math_element_tex(math: LexborNode) -> str:
    annotation = math.css_first("annotation[encoding='application/x-tex'], annotation[encoding='TeX']")
    if annotation is not None and (annotation.text(deep=True) or "").strip():
        return annotation.text(deep=True)
    return math.attributes.get("alttext") or mathml_to_latex(math)


def _classes(node: LexborNode) -> set[str]:
    return set((node.attributes.get("class") or "").split())


def _swap(node: LexborNode, replacement: str) -> None:
    if replacement:
        node.replace_with(replacement)
    else:
        node.remove()


def _text_length(text: str | None) -> int:
    """len(_collapse(text)) without building the string: str.split runs in C, the regex in `_collapse` does not."""
    words = (text or "").split()
    return sum(map(len, words)) + len(words) - 1 if words else 0


def _collapse(text: str | None) -> str:
    return WHITESPACE.sub(" ", (text or "").replace("\u00ad", "")).strip()


def _render_blocks(node: LexborNode, blocks: list[str], state: _RenderState) -> None:
    """Append the Markdown blocks of `node`'s children to `blocks` (inline runs become paragraphs)."""
    inline: list[str] = []
    start = len(blocks)
    breaks = codes = block_children = 0

    def flush() -> None:
        paragraph = _inline_to_paragraph("".join(inline))
        inline.clear()
        if paragraph:
            blocks.append(paragraph)

    for child in node.iter(include_text=True):
        tag = child.tag
        if tag == "-text":
            inline.append(child.text_content or "")
        elif tag in ("-comment", "img", "hr", "#comment"):
            continue
        elif tag == "br":
            breaks += 1
            inline.append(LINE_BREAK)
        elif tag not in BLOCK_TAGS:
            codes += tag == "code"
            inline.append(_render_inline(child))
        else:
            block_children += 1
            flush()
            _render_block(child, blocks, state)
    flush()
    if breaks >= 2 and codes >= 3 and not block_children:
        lines = _token_code_lines(node)
        if lines:
            # One <code> per token, lines ended by <br>: a code block whose highlighter dropped <pre>.
            del blocks[start:]
            blocks.append(_fence("\n".join(lines), _code_language(node)))


def _token_code_lines(node: LexborNode) -> list[str]:
    """The lines of a `<br>`-separated block where every non-empty line holds a `<code>` token, else []."""
    lines: list[list[str]] = [[]]
    has_code = [False]
    for child in node.iter(include_text=True):
        tag = child.tag
        if tag == "br":
            lines.append([])
            has_code.append(False)
        elif tag == "-text":
            lines[-1].append(child.text_content or "")
        elif tag in ("-comment", "#comment"):
            continue
        elif tag in INLINE_CODE_TAGS:
            has_code[-1] = has_code[-1] or tag == "code"
            lines[-1].append(child.text(deep=True) or "")
        else:
            return []
    texts = ["".join(parts).replace("\n", "").replace("\u00a0", " ").rstrip() for parts in lines]
    filled = [index for index, text in enumerate(texts) if text.strip()]
    if len(filled) < 2 or not all(has_code[index] for index in filled):
        return []
    return texts[filled[0]:filled[-1] + 1]


def _render_block(node: LexborNode, blocks: list[str], state: _RenderState) -> None:
    tag = node.tag
    if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
        text = _inline_to_paragraph(_render_inline(node)).replace("\n", " ")
        if text:
            blocks.append("#" * int(tag[1]) + " " + text)
    elif tag == "pre":
        blocks.append(_render_code(node))
    elif tag in ("div", "td", "figure") and _line_elements(node):
        blocks.append(_fence(_lines_as_code(_line_elements(node)), _code_language(node)))
    elif tag in ("ul", "ol"):
        rendered = _render_list(node, state)
        if rendered:
            blocks.append(rendered)
    elif tag == "table":
        _render_table(node, blocks, state)
    elif tag == "blockquote":
        inner: list[str] = []
        _render_blocks(node, inner, state)
        if inner:
            blocks.append("\n".join("> " + line if line else ">" for line in "\n\n".join(inner).split("\n")))
    elif tag == "dt":
        text = _inline_to_paragraph(_render_inline(node))
        if text:
            blocks.append(text)
    else:
        _render_blocks(node, blocks, state)


def _render_inline(node: LexborNode) -> str:
    tag = node.tag
    if tag == "-text":
        return node.text_content or ""
    if tag == "br":
        return LINE_BREAK
    if tag in ("img", "-comment", "#comment"):
        return ""
    if tag == "code" and _line_elements(node):
        return "\n\n" + _fence(_lines_as_code(_line_elements(node)), _code_language(node)) + "\n\n"
    if tag == "code":
        code = node.text(deep=True) or ""
        if "\n" in code.strip():
            # A multi-line <code> outside <pre> is a code block that lost its <pre>.
            return "\n\n" + _fence(code, _code_language(node)) + "\n\n"
        code = _collapse(code)
        return f"`{code}`" if code else ""
    parts = [_render_inline(child) for child in node.iter(include_text=True)]
    text = "".join(parts)
    if tag in ("sup",) and text.strip() and not text.startswith(("\ue000", "\ue002")):
        return "^" + text.strip() if text.strip().isdigit() else text
    return text


def _inline_to_paragraph(text: str) -> str:
    if "\n\n```" in text or "\n\n~~~" in text:
        # Keep fenced blocks produced by a multi-line inline <code> verbatim. The pieces between them are
        # plain paragraphs (never split again), so an unclosed fence in the page's own text cannot recurse.
        pieces = FENCED_BLOCK.split(text)
        paragraphs = (piece.strip("\n") if FENCED_BLOCK.fullmatch(piece) else _plain_paragraph(piece)
                      for piece in pieces if piece.strip())
        return "\n\n".join(paragraph for paragraph in paragraphs if paragraph)
    return _plain_paragraph(text)


def _plain_paragraph(text: str) -> str:
    text = _collapse(text)
    text = re.sub(r"\s*\ue004\s*", "\n", text).strip()
    if not text:
        return ""
    if BOILERPLATE_LINE.match(text) and len(text) < 120:
        return ""
    if "\\(" in text or "\\[" in text:
        # Raw MathJax source in the page text: normalise the delimiters to $ / $$.
        text = TEX_DELIMITERS.sub(lambda m: f"$${m.group(2).strip()}$$" if m.group(2) else f"${m.group(1).strip()}$",
                                  text)
    return text


def _code_language(node: LexborNode) -> str:
    candidates = [node]
    inner = node.css_first("code")
    if inner is not None:
        candidates.append(inner)
    parent = node.parent
    for _ in range(2):
        if parent is None:
            break
        candidates.append(parent)
        parent = parent.parent
    for candidate in candidates:
        attrs = candidate.attributes
        for value in (attrs.get("class") or "", attrs.get("data-lang") or "", attrs.get("data-language") or ""):
            if attrs.get("data-lang") == value and value:
                return value.lower()
            match = CODE_LANGUAGE.search(value)
            if match and match.group(1).lower() not in ("default", "none", "plaintext", "text"):
                return match.group(1).lower()
    return ""


def _fence(code: str, language: str) -> str:
    code = code.strip("\n").rstrip()
    fence = "~~~~" if "```" in code else "```"
    return f"{fence}{language}\n{code}\n{fence}"


def _line_elements(node: LexborNode) -> list[LexborNode]:
    """The children of a highlighter's "one element per line" code block, or [] when it is not one.

    Highlighters without <pre> (one <div class="line"> per line, one <code> or <span> per token) lose the
    line structure as soon as the text is collapsed, so the lines are read one element at a time.
    """
    children = [child for child in node.iter(include_text=False)]
    lines = [child for child in children if set((child.attributes.get("class") or "").split()) & CODE_LINE_CLASSES]
    return lines if len(lines) >= 2 and len(lines) * 2 >= len(children) else []


def _lines_as_code(lines: list[LexborNode]) -> str:
    return "\n".join((line.text(deep=True) or "").replace("\u00a0", " ").replace("\n", "").rstrip() for line in lines)


def _render_code(pre: LexborNode) -> str:
    for number in pre.css(".lineno, .linenos, .line-number, .line-numbers, .gutter"):
        number.remove()
    code = (pre.text(deep=True) or "").replace("\r\n", "\n").replace("\u00a0", " ")
    return _fence(code, _code_language(pre))


def _render_list(node: LexborNode, state: _RenderState) -> str:
    ordered = node.tag == "ol"
    start = int(node.attributes.get("start") or 1) if (node.attributes.get("start") or "1").isdigit() else 1
    lines: list[str] = []
    number = start
    for item in node.iter(include_text=False):
        if item.tag != "li":
            if item.tag in ("ul", "ol"):
                nested = _render_list(item, state)
                if nested:
                    lines.append("\n".join("  " + line for line in nested.split("\n")))
            continue
        inner: list[str] = []
        _render_blocks(item, inner, state)
        if not inner:
            continue
        marker = f"{number}. " if ordered else "- "
        number += 1
        body = "\n".join(inner)
        indent = " " * len(marker)
        lines.append(marker + body.replace("\n", "\n" + indent))
    return "\n".join(lines)


def _render_table(table: LexborNode, blocks: list[str], state: _RenderState) -> None:
    rows = [row for row in table.css("tr") if _owning_table_id(row) == table.mem_id]
    # css() matches the node itself too, so a nested table shows up as a second match. A table around tables
    # is layout, unless it has header cells of its own: API references nest a table of values in a cell.
    is_layout = table.attributes.get("role") == "presentation" or (
        len(table.css("table")) > 1 and not any(_owning_table_id(th) == table.mem_id for th in table.css("th")))
    cell_rows: list[list[LexborNode]] = [
        [cell for cell in row.iter(include_text=False) if cell.tag in ("td", "th")] for row in rows
    ]
    widths = [sum(_colspan(cell) for cell in cells) for cells in cell_rows]
    if is_layout or not rows or max(widths, default=0) < 2:
        _render_blocks(table, blocks, state)
        return
    caption = table.css_first("caption")
    if caption is not None:
        text = _inline_to_paragraph(_render_inline(caption))
        if text:
            blocks.append(text)
    width = max(widths)
    markdown_rows = []
    for cells in cell_rows:
        values: list[str] = []
        for cell in cells:
            inner: list[str] = []
            _render_blocks(cell, inner, state)
            value = " ".join(_table_as_cell_text(block) for block in inner).replace("\n", " ").replace("|", "\\|").strip()
            value = value.replace(DISPLAY_MATH_OPEN, INLINE_MATH_OPEN).replace(DISPLAY_MATH_CLOSE, INLINE_MATH_CLOSE)
            values.append(value)
            values.extend([""] * (_colspan(cell) - 1))
        if not any(values):
            continue
        values.extend([""] * (width - len(values)))
        markdown_rows.append("| " + " | ".join(values) + " |")
    if markdown_rows:
        separator = "| " + " | ".join(["---"] * width) + " |"
        blocks.append("\n".join([markdown_rows[0], separator, *markdown_rows[1:]]))


def _table_as_cell_text(block: str) -> str:
    """A nested Markdown table written on one line ("a: b; c: d") so it fits in its outer cell."""
    if not block.startswith("| "):
        return block
    rows = [line.strip().strip("|").strip() for line in block.split("\n") if not line.startswith("| ---")]
    return "; ".join(": ".join(cell.strip() for cell in row.split(" | ") if cell.strip()) for row in rows)


def _owning_table_id(row: LexborNode) -> int | None:
    node = row.parent
    while node is not None and node.tag != "table":
        node = node.parent
    return node.mem_id if node is not None else None


def _colspan(cell: LexborNode) -> int:
    value = cell.attributes.get("colspan") or "1"
    return min(int(value), 50) if value.isdigit() and int(value) > 0 else 1


def _finish(blocks: list[str], state: _RenderState) -> str:
    text = "\n\n".join(block for block in blocks if block.strip())

    def formula(match: re.Match) -> str:
        before, kind, index, after = match.groups()
        tex = state.formulas[int(index)]
        if kind == DISPLAY_MATH_OPEN:
            return f"\n$${tex}$$\n" if tex else " "
        return f"{before}${tex}${after}" if tex else before or after

    text = MATH_PLACEHOLDER.sub(formula, text)
    # Markers in places no renderer joined (code, titles) must not reach the output either.
    text = STRIPPED_CHARACTERS.sub("", text.replace(LINE_BREAK, "\n"))
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()
