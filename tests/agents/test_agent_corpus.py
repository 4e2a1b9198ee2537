"""Passages of real English from CPython's documentation topics."""

from __future__ import annotations

import re

import pytest

from clients.agents import corpus
from clients.agents.corpus import MIN_WORDS, load_passages, topic_passages

TOPIC = """The "if" statement
******************

The "if" statement is used for conditional execution:

   if_stmt ::= "if" assignment_expression ":" suite

It selects exactly one of the suites. It is *really* fast [1]. Then
that suite is executed. If all expressions are false, the suite of the "else"
clause is executed. Too short.

* If the target is an identifier, the name is bound to the object.

  * Nested items are dropped because they sit deeper.

Direct Call
   A definition indented under its term is dropped.

+------+------+
| Op   | Note |
+------+------+
"""


def test_a_topic_gives_prose_sentences_grouped_in_threes_without_markup() -> None:
    assert topic_passages(TOPIC, sentences=3, max_chars=400) == [
        "It selects exactly one of the suites. It is really fast. Then that suite "
        "is executed.",
        'If all expressions are false, the suite of the "else" clause is executed.',
        "If the target is an identifier, the name is bound to the object.",
    ]


def test_a_passage_closes_before_max_chars_and_longer_sentences_are_dropped() -> None:
    passages = topic_passages(TOPIC, sentences=3, max_chars=60)

    # The two sentences of 73 and 64 characters are gone.
    assert passages == [
        "It selects exactly one of the suites. It is really fast.",
        "Then that suite is executed.",
    ]


def test_the_documentation_topics_give_hundreds_of_passages_of_a_few_sentences() -> (
    None
):
    passages = load_passages()

    assert len(passages) > 500
    assert len(set(passages)) == len(passages)
    for passage in passages:
        assert 0 < len(passage) <= 400
        assert passage[-1] in ".!?"
        assert "\n" not in passage
        assert "  " not in passage
        assert not re.search(r"\[\d+\]|\*[A-Za-z]\w*\*", passage)  # marks
        sentences = re.split(r"(?<=[.!?]) (?=[A-Z0-9\"“'(])", passage)
        assert 1 <= len(sentences) <= 3, passage
        assert all(len(s.split()) >= MIN_WORDS for s in sentences), passage


def test_the_if_topic_gives_its_sentences_but_not_the_one_that_ends_in_a_colon() -> (
    None
):
    passages = load_passages()

    assert any(p.startswith("It selects exactly one of the suites") for p in passages)
    assert not any('The "if" statement is used' in p for p in passages)


def test_loading_twice_gives_the_same_passages_in_the_same_order() -> None:
    first = load_passages(sentences=2, max_chars=300)
    corpus._load.cache_clear()  # read the topics again, not the cached copy

    assert load_passages(sentences=2, max_chars=300) == first


def test_single_sentence_passages_are_at_most_one_sentence() -> None:
    for passage in load_passages(sentences=1)[:200]:
        assert len(re.split(r"(?<=[.!?]) (?=[A-Z0-9\"“'(])", passage)) == 1


@pytest.mark.parametrize(("sentences", "max_chars"), [(0, 400), (3, 0)])
def test_passages_need_at_least_one_sentence_and_one_character(
    sentences: int, max_chars: int
) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        load_passages(sentences, max_chars)
