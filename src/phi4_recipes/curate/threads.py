"""Find the posts of forum and Q&A threads so they can be written as ordered posts with their metadata.

Covers the markup of Stack Exchange, schema.org microdata (Question/Answer/DiscussionForumPosting),
Discourse, phpBB/vBulletin/XenForo-style boards and generic `data-post-id` posts.
"""

from __future__ import annotations

import re
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
AUTHOR_SELECTORS = (".post-signature.owner .user-details [itemprop=name]", ".post-signature.owner .user-details a",
                    "[itemprop=author] [itemprop=name]", "[itemprop=author]", ".user-details [itemprop=name]",
                    ".user-details a", ".username", ".post-author", ".author", ".poster", "[data-user-card]")
SCORE_SELECTORS = ("[itemprop=upvoteCount]", ".js-vote-count", ".vote-count-post", ".post-score", ".score",
                   ".votes")
ACCEPTED_CLASSES = {"accepted-answer", "accepted", "is-accepted", "solution", "accepted-solution"}
INTEGER = re.compile(r"[-+−]?\d[\d,]*")


@dataclass
class ThreadPost:
    """One post of a thread: its body node and what the page says about it."""

    body: LexborNode
    role: str  # "question", "answer" or "post"
    author: str | None
    score: int | None
    accepted: bool


def find_thread_posts(root: LexborNode) -> list[ThreadPost]:
    """Return the thread's posts in page order, or [] when the page is not a thread.

    Args:
        root (LexborNode): the page body (after boilerplate removal).

    Returns:
        list[ThreadPost]: outermost post elements; a page needs a question or at least two posts.
    """
    candidates = {node.mem_id: node for node in root.css(POST_SELECTOR)}
    if not candidates:
        return []
    # A node matching several selectors comes back several times and not in page order: dedupe and sort.
    order = {node.mem_id: index for index, node in enumerate(root.traverse()) if node.mem_id in candidates}
    ids = set(candidates)
    outermost = [candidates[mem_id] for mem_id in sorted(candidates, key=lambda m: order.get(m, 0))
                 if not _has_ancestor_in(candidates[mem_id], ids)]
    has_question = any(node.css_matches(QUESTION_SELECTOR) for node in outermost)
    if len(outermost) < 2 and not has_question:
        return []
    return [_read_post(node) for node in outermost]


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


def _has_ancestor_in(node: LexborNode, ids: set[int]) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.mem_id in ids:
            return True
        parent = parent.parent
    return False


def _role(node: LexborNode) -> str:
    if node.css_matches(QUESTION_SELECTOR):
        return "question"
    itemtype = node.attributes.get("itemtype") or ""
    if "answer" in (node.attributes.get("class") or "").split() or itemtype.endswith("/Answer"):
        return "answer"
    return "post"


def _read_post(node: LexborNode) -> ThreadPost:
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
    return ThreadPost(body=body, role=_role(node), author=author, score=score, accepted=accepted)


def _first_line(text: str | None) -> str | None:
    for line in (text or "").splitlines():
        line = line.strip()
        if line:
            return line[:80]
    return None
