"""Find the posts of forum and Q&A threads so they can be written as ordered posts with their metadata.

Covers the markup of Stack Exchange, schema.org microdata (Question/Answer/DiscussionForumPosting),
Discourse, phpBB/vBulletin/XenForo-style boards and generic `data-post-id` posts.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from selectolax.lexbor import LexborNode

QUESTION_SELECTOR = "#question, .question, [itemtype$='/Question']"
POST_SELECTOR = (
    "#question, .question, .answer, [itemtype$='/Question'], [itemtype$='/Answer'], "
    "[itemtype$='/DiscussionForumPosting'], .topic-post, article[data-post-id], [data-post-id], [data-postid], "
    ".postcontainer, article.message, div.post.has-profile, .forum-post, .reply-post"
)
BODY_SELECTORS = ("[itemprop=text]", ".s-prose", ".js-post-body", ".post-text", ".cooked", ".message-body",
                  ".postbody .content", ".post-content", ".post-body", ".postbody", ".post-message", ".content")
ANY_BODY = ", ".join(BODY_SELECTORS)
AUTHOR_SELECTORS = (".post-signature.owner .user-details [itemprop=name]", ".post-signature.owner .user-details a",
                    "[itemprop=author] [itemprop=name]", "[itemprop=author]", ".user-details [itemprop=name]",
                    ".user-details a", ".username", ".post-author", ".author", ".poster", "[data-user-card]")
SCORE_SELECTORS = ("[itemprop=upvoteCount]", ".js-vote-count", ".vote-count-post", ".post-score", ".score",
                   ".votes")
ACCEPTED_CLASSES = {"accepted-answer", "accepted", "is-accepted", "solution", "accepted-solution"}
# Posts are blocks; headings, links and images with post classes are teasers and counters.
POST_TAGS = {"div", "article", "section", "li", "td", "tr", "tbody", "table", "blockquote"}
INTEGER = re.compile(r"[-+−]?\d[\d,]*")


@dataclass
class ThreadPost:
    """One post of a thread: its body node and what the page says about it."""

    body: LexborNode
    role: str  # "question", "answer" or "post"
    author: str | None
    score: int | None
    accepted: bool
    element: LexborNode | None = None  # the whole post (body plus author, date and signature lines)
    signature: tuple[str, str] = ("", "")  # tag and first class: posts of one thread share it


def find_thread_posts(root: LexborNode) -> list[ThreadPost]:
    """Return the thread's posts in page order, or [] when the page is not a thread.

    Widgets also carry post markup (a `data-post-id` on a like counter, `class="answer"` on a tutorial box),
    so a thread needs either a question with answers or repeated posts: two or more block elements of the
    same tag and class. A candidate that contains answers or several posts is a wrapper (Stack Exchange's
    Question microdata wraps its answers too): its posts are taken, and its own body is the question.

    Args:
        root (LexborNode): the page body (before boilerplate removal, which drops vote widgets).

    Returns:
        list[ThreadPost]: the posts; the caller checks they hold the page's text.
    """
    found = root.css(POST_SELECTOR)
    if not found:
        return []
    candidates = [node for node in _in_page_order(root, found) if node.tag in POST_TAGS]
    # css_matches() also looks at descendants, so "is this node a question" is a membership test.
    questions = {node.mem_id for node in root.css(QUESTION_SELECTOR)}
    ids = {node.mem_id for node in candidates}
    inner: dict[int, list[LexborNode]] = {node.mem_id: [] for node in candidates}
    for node in candidates:
        ancestor = _nearest_ancestor_in(node, ids)
        # Vote counters, post menus and comment lists carry the post's id too (data-post-id); only a
        # candidate with a post body of its own makes its ancestor a wrapper of posts.
        if ancestor is not None and node.css_first(ANY_BODY) is not None:
            inner[ancestor.mem_id].append(node)
    wrappers = {mem_id for mem_id, children in inner.items()
                if len(children) >= 2 or any(_role(child, questions) == "answer" for child in children)}
    posts: list[ThreadPost] = []
    for node in candidates:
        ancestor = _nearest_ancestor_in(node, ids)
        if ancestor is not None and ancestor.mem_id not in wrappers:
            continue  # a quote or widget inside a post belongs to that post
        if node.mem_id not in wrappers:
            posts.append(_read_post(node, questions))
        elif node.mem_id in questions and not any(child.mem_id in questions for child in inner[node.mem_id]):
            body = _own_body(node, {child.mem_id for child in inner[node.mem_id]})
            if body is not None:
                # Author and score come from around the question's own body, not from the answers inside.
                post = _read_post(body.parent if body.parent is not None else body, questions)
                post.role = "question"
                post.body = post.element = body
                posts.append(post)
    if any(post.role == "question" for post in posts):
        return posts
    signatures = Counter(post.signature for post in posts)
    if not signatures or signatures.most_common(1)[0][1] < 2:
        return []
    return posts


def render_thread_header(number: int, post: ThreadPost) -> str:
    """A one-line Markdown heading that keeps order, role, author, score and acceptance.

    Example: `### Post 2 (answer, accepted) | author: bob | score: 31`.
    """
    role = post.role + (", accepted" if post.accepted else "")
    header = f"### Post {number} ({role})"
    if post.author:
        header += f" | author: {post.author}"
    if post.score is not None:
        header += f" | score: {post.score}"
    return header


def _in_page_order(root: LexborNode, nodes: list[LexborNode]) -> list[LexborNode]:
    # A node matching several selectors comes back several times and not in page order: dedupe and sort.
    by_id = {node.mem_id: node for node in nodes}
    return [node for node in root.traverse() if node.mem_id in by_id]


def _nearest_ancestor_in(node: LexborNode, ids: set[int]) -> LexborNode | None:
    parent = node.parent
    while parent is not None:
        if parent.mem_id in ids:
            return parent
        parent = parent.parent
    return None


def _own_body(wrapper: LexborNode, inner_ids: set[int]) -> LexborNode | None:
    """The wrapper's first post body that is not inside one of its inner posts."""
    for selector in BODY_SELECTORS:
        for found in wrapper.css(selector):
            if _nearest_ancestor_in(found, inner_ids) is None and found.mem_id not in inner_ids:
                return found
    return None


def _role(node: LexborNode, questions: set[int]) -> str:
    if node.mem_id in questions:
        return "question"
    itemtype = node.attributes.get("itemtype") or ""
    if "answer" in (node.attributes.get("class") or "").split() or itemtype.endswith("/Answer"):
        return "answer"
    return "post"


def _read_post(node: LexborNode, questions: set[int]) -> ThreadPost:
    author = None
    for selector in AUTHOR_SELECTORS:
        found = node.css_first(selector)
        if found is not None:
            author = _first_line(found.attributes.get("content") or found.text(deep=True))
            if author:
                break
    score = None
    for selector in SCORE_SELECTORS:
        found = node.css_first(selector)
        if found is not None:
            raw = found.attributes.get("data-value") or found.attributes.get("content") or found.text(deep=True)
            match = INTEGER.search(raw or "")
            if match:
                score = int(match.group(0).replace(",", "").replace("−", "-"))
                break
    classes = set((node.attributes.get("class") or "").lower().split())
    accepted = bool(classes & ACCEPTED_CLASSES) or node.attributes.get("itemprop") == "acceptedAnswer"
    body = node
    for selector in BODY_SELECTORS:
        found = node.css_first(selector)
        if found is not None:
            body = found
            break
    if body is node:
        # No body container: render the post minus the metadata blocks already captured above.
        for meta in node.css(".post-signature, .user-details, .votecell, .js-voting-container, .postprofile"):
            meta.remove()
    signature = (node.tag, (node.attributes.get("class") or "").split()[0] if node.attributes.get("class") else "")
    return ThreadPost(body=body, role=_role(node, questions), author=author, score=score, accepted=accepted,
                      element=node, signature=signature)


def _first_line(text: str | None) -> str | None:
    for line in (text or "").splitlines():
        line = line.strip()
        if line:
            return line[:80]
    return None
