"""Real English text for embedding jobs: CPython's own documentation topics.

Every CPython ships the text of its documentation topics (``help("if")``) in
the standard library module ``pydoc_data.topics``: some 80 topics, half a
million characters of edited English prose about the language. `load_passages`
turns them into passages of a few sentences each, the kind of input a consumer
embeds for search:

1. topics in the order of their names, each split into paragraphs at blank
   lines;
2. only prose paragraphs are kept: those that start at the left margin with a
   capital letter or a quoted name, or with a list bullet (``* ``) and then
   one, and whose lines all share that margin. Headings (a line underlined
   with ``*``, ``=`` or ``-``), indented code and grammar, nested list items
   and tables are dropped;
3. a paragraph's lines are joined, its emphasis marks (``*word*``) and footnote
   marks (``[3]``) removed, and it is cut into sentences after ``.``, ``!`` or
   ``?`` followed by a space and a capital letter, a digit or a quote;
4. sentences that start like a paragraph, have at least `MIN_WORDS` words
   and at most ``max_chars`` characters and end in ``.``, ``!`` or ``?`` are
   grouped, in order and within their paragraph, into passages of up to
   ``sentences`` sentences and ``max_chars`` characters;
5. a passage that an earlier topic already gave (some topics repeat another's
   sections) is kept only at its first place.

The same Python version always gives the same passages, in the same order; a
newer CPython's documentation may give somewhat different ones.
"""

from __future__ import annotations

import functools
import re

__all__ = ["MIN_WORDS", "load_passages", "topic_passages"]

MIN_WORDS = 4
"""Shorter sentences (fragments, captions) are dropped."""

_STARTS_PROSE = re.compile(r"[A-Z]|[\"“][A-Za-z_]")
_UNDERLINE = re.compile(r"^[*=\-^~]{3,}$")
_EMPHASIS = re.compile(r"\*{1,2}([^*\s][^*]*?)\*{1,2}")
_FOOTNOTE = re.compile(r"\s?\[\d+\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“'(])")


def load_passages(sentences: int = 3, max_chars: int = 400) -> tuple[str, ...]:
    """Every passage of every documentation topic, in a fixed order.

    Args:
        sentences: the most sentences in one passage (at least 1).
        max_chars: the most characters in one passage; a longer sentence is
            dropped.
    """
    if sentences < 1 or max_chars < 1:
        raise ValueError("sentences and max_chars must be at least 1")
    return _load(sentences, max_chars)


@functools.cache
def _load(sentences: int, max_chars: int) -> tuple[str, ...]:
    from pydoc_data.topics import topics

    passages: dict[str, None] = {}
    for name in sorted(topics):
        # Some topics repeat another's sections: keep a passage's first place.
        found = topic_passages(topics[name], sentences, max_chars)
        passages.update(dict.fromkeys(found))
    return tuple(passages)


def topic_passages(text: str, sentences: int = 3, max_chars: int = 400) -> list[str]:
    """The passages of one topic's text (see the module doc)."""
    passages: list[str] = []
    for paragraph in _prose_paragraphs(text):
        passages += _group(_sentences(paragraph, max_chars), sentences, max_chars)
    return passages


def _prose_paragraphs(text: str) -> list[str]:
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        lines = [line.rstrip() for line in block.splitlines() if line.strip()]
        if not lines or any(_UNDERLINE.match(line.strip()) for line in lines):
            continue
        first = lines[0].removeprefix("* ")
        if not _STARTS_PROSE.match(first):
            continue
        # A paragraph's lines share its left margin (two spaces in a list
        # item); a line indented further is a term's definition or code.
        margin = " " * (len(lines[0]) - len(first))
        rest = lines[1:]
        if any(
            not line.startswith(margin) or line[len(margin)] == " " for line in rest
        ):
            continue
        paragraphs.append(" ".join([first, *(line.strip() for line in lines[1:])]))
    return paragraphs


def _sentences(paragraph: str, max_chars: int) -> list[str]:
    text = _FOOTNOTE.sub("", _EMPHASIS.sub(r"\1", paragraph))
    text = re.sub(r"\s+", " ", text).strip()
    return [
        s
        for s in _SENTENCE_END.split(text)
        if s[-1] in ".!?"
        and _STARTS_PROSE.match(s)
        and len(s.split()) >= MIN_WORDS
        and len(s) <= max_chars
    ]


def _group(found: list[str], sentences: int, max_chars: int) -> list[str]:
    passages: list[str] = []
    current: list[str] = []
    for sentence in found:
        joined = " ".join([*current, sentence])
        if current and (len(current) == sentences or len(joined) > max_chars):
            passages.append(" ".join(current))
            current = []
        current.append(sentence)
    if current:
        passages.append(" ".join(current))
    return passages
