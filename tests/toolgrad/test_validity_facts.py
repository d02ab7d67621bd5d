"""What the validity checks build once per sample and share (:class:`SampleFacts`, the argument
leaves with their keys, the responses as written, the words worth reading) against the direct
computations they stand for."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from toolgrad.json_values import keyed_leaves, leaf_key, leaves, top_argument
from toolgrad.records import Sample
from toolgrad.validity.checks import SampleFacts, _ItemNames, exemption, lists_on_path, names_item, source_of
from toolgrad.validity.statements import (
    _HAS_DIGIT,
    _MAY_BE_VALUE,
    _ORDINAL,
    _QUOTED,
    _QUOTES,
    ResponseIndex,
    StatedValue,
    Text,
    Written,
    _words_at,
    answer_values,
    first_unheld,
    number_of,
    plain_quotes,
)
from toolgrad.validity.tool_terms import ToolTerms

# keys that pointers escape ("~", "/"), that leaf_key skips (digits, "²" is a digit to str.isdigit) or that are empty
_KEYS = st.sampled_from(["a", "b", "id", "", "0", "12", "²", "~", "/", "a/b~1", "x~0y", "name"]) | st.text(max_size=4)
_SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
            | st.sampled_from(["Rex", "1,000", "12", "3rd", "a@b.c", "x_y", " Sold  Out ", "37461.0"]))
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
                     max_leaves=30)
# words with every kind of character the word filters tell apart: ASCII and other digits
# (superscripts are digits to str.isdigit, not to a regex's \d), "@", "_", quotes, signs, spaces
_TEXT = st.lists(st.sampled_from([*"aZ09 _@.,'\"`-$%()\n\t\u00a0\u2003\u3000²①٣３é:;!?", "3rd", "1st", "x_y", "1,000"]),
                max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _JSON, max_size=4) | _JSON)
def test_keyed_leaves_are_the_leaves_with_their_leaf_key_and_top_argument(value: Any) -> None:
    assert keyed_leaves(value) == [(pointer, leaf, leaf_key(pointer), top_argument(pointer))
                                   for pointer, leaf in leaves(value)]


def _scalars(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _scalars(v)]
    if isinstance(node, list):
        return [s for v in node for s in _scalars(v)]
    return [node]


def _lengths(node: Any) -> set[int]:
    if isinstance(node, dict):
        return {n for v in node.values() for n in _lengths(v)}
    if isinstance(node, list):
        return {len(node)} | {n for v in node for n in _lengths(v)}
    return set()


@settings(max_examples=300, deadline=None)
@given(st.lists(_JSON, max_size=3), _TEXT)
def test_what_responses_hold_as_written_is_their_scalars_and_a_response_index_holds_it_too(
        responses: list[Any], answer: str) -> None:
    written = Written.of(responses)
    scalars = [s for r in responses for s in _scalars(r)]
    assert written.strings == {s for s in scalars if type(s) is str}
    assert written.numbers == {s for s in scalars if type(s) is int} | {
        number_of(str(s)) if number_of(str(s)) is not None else s for s in scalars if type(s) is float} - {None}
    assert written.lengths == {n for r in responses for n in _lengths(r)}, "a response's own length counts"
    index = ResponseIndex.of(responses)
    for value in answer_values(answer) + answer_values(" ".join(f"'{s}'" for s in scalars if isinstance(s, str))):
        assert not written.holds(value) or index.holds(value), value


@settings(max_examples=200, deadline=None)
@given(st.lists(_JSON, min_size=1, max_size=3), st.lists(st.integers(100, 599), max_size=3), _TEXT, st.randoms())
def test_the_first_unheld_value_is_the_same_from_responses_written_one_by_one_in_any_order(
        responses: list[Any], statuses: list[int], answer: str, order: Any) -> None:
    values = answer_values(answer + " " + " ".join(str(s) for r in responses for s in _scalars(r))[:200])
    index = ResponseIndex.of(responses, statuses)
    expected = next((v for v in values if not index.holds(v)), None)
    each = [Written.of([r]) for r in responses]
    order.shuffle(each)
    assert first_unheld(responses, statuses, values) == expected
    assert first_unheld(responses, statuses, values, each.__iter__) == expected


@settings(max_examples=500, deadline=None)
@given(_TEXT)
def test_the_word_filters_drop_only_words_that_cannot_be_a_number_or_an_answer_value(text: str) -> None:
    def value_like(word: str) -> bool:  # the test _answer_values applies to each word
        return not _ORDINAL.match(word.lower()) and (
            any(c.isdigit() for c in word) or "@" in word or "_" in word.strip("_"))

    every = list(_words_at(text))
    assert [w for w in _words_at(text, _HAS_DIGIT) if number_of(w[1])] == [w for w in every if number_of(w[1])]
    assert [w for w in _words_at(text, _MAY_BE_VALUE) if value_like(w[1])] == [w for w in every if value_like(w[1])]
    assert Text.of(text).numbers == frozenset(n for _, w in every if (n := number_of(w)) is not None)


def _facts_agree_with_direct_computation(sample: Sample, terms: ToolTerms | None) -> None:
    facts = SampleFacts(sample.chains, sample.query, sample.answer, lambda step: terms)
    text = Text.of(sample.query)
    steps = [(ci, si, s) for ci, c in enumerate(sample.chains) for si, s in enumerate(c.steps)]
    assert facts.located == steps and facts.terms == [terms] * len(steps)
    assert facts.stated == answer_values(sample.answer) and facts.names.text is text
    for (_, _, step), got in zip(steps, facts.leaves, strict=True):
        expected = []
        for pointer, value in leaves(step.arguments):
            stated = text.states(value, leaf_key(pointer))
            expected.append((pointer, value, top_argument(pointer), stated, None if stated else source_of(step, pointer)))
            assert exemption(terms, pointer, value, top_argument(pointer)) == exemption(terms, pointer, value)
        assert got == expected
        for _, _, _, _, found in got:
            if found is not None and found[0].chain < len(sample.chains) and \
                    found[0].step < len(sample.chains[found[0].chain].steps):
                source, at = found
                response = sample.chains[source.chain].steps[source.step].response
                assert facts.lists_on_path(source.chain, source.step, at) == lists_on_path(response, at)
                for _, items, index in facts.lists_on_path(source.chain, source.step, at):
                    assert facts.names.names(items, index) is names_item(text, items, index)
    for k, (_, _, step) in enumerate(steps):
        assert facts.written(k) == Written.of([step.response])
    assert list(facts.written_latest_first()) == [Written.of([s.response]) for _, _, s in reversed(steps)]


def test_a_sample_s_facts_are_the_direct_computations_on_generated_samples(
        offline_samples: dict[str, list[Sample]]) -> None:
    read = ToolTerms({"type": "object", "properties": {}}, frozenset(), writes=False)
    # a credential and schema-fixed values at some of the arguments the generated samples send
    fixed = ToolTerms({"type": "object", "properties": {"id": {"default": 1}, "name": {"enum": ["x"]}}},
                      frozenset({"id", "key", "name", "body"}), writes=True)
    checked = 0
    for samples in offline_samples.values():
        for sample in samples:
            for terms in (None, read, fixed):
                _facts_agree_with_direct_computation(sample, terms)
            # the query cut short: fewer values stated, more leaves with sources and list items to name
            short = sample.model_copy(update={"query": sample.query[: len(sample.query) // 3]})
            _facts_agree_with_direct_computation(short, None)
            checked += 1
    assert checked >= 6


def test_one_item_names_memo_serves_every_check_of_a_sample() -> None:
    items = [{"id": 101, "name": "Rex"}, {"id": 102, "name": "Tom"}]
    names = _ItemNames(Text.of("the pet Tom"))
    assert [names.names(items, i) for i in (0, 1, 0, 1)] == [False, True, False, True]


def test_a_tool_s_terms_give_the_schemas_at_a_pointer_as_schemas_at_does_asked_once_or_again() -> None:
    from toolgrad.validity.tool_terms import schemas_at

    parameters = {"type": "object", "properties": {
        "kind": {"enum": ["pet"]}, "body": {"allOf": [{"properties": {"size": {"default": 10}}},
                                                      {"properties": {"tags": {"items": {"const": "v1"}}}}]}}}
    terms = ToolTerms(parameters, frozenset(), writes=True)
    for pointer in ("", "/kind", "/body/size", "/body/tags/0", "/body/tags/7", "/nothing", "/kind", "/body/size"):
        assert terms.schemas_at(pointer) == schemas_at(parameters, pointer), pointer
    assert terms.fixed_by_schema("/body/tags/3", "v1") == "the schema's const"
    assert terms == ToolTerms(parameters, frozenset(), writes=True), "what it remembers is no part of its value"


# The reference: how the answer's values were read before the quoted values were blanked out of
# one text (each piece outside quotes read apart) and before the quote pattern looked back from the quote.
_QUOTED_BEFORE = re.compile(
    r"""(?:^|(?<=[\s(\[{:,=]))(?:'([^'\n]+?)'|"([^"\n]+?)"|`([^`\n]+?)`)(?=$|[\s.,;:!?)\]}])""")


def _answer_values_piece_by_piece(answer: str) -> list[StatedValue]:
    text = answer.translate(_QUOTES)
    found: list[tuple[int, StatedValue]] = []
    last = 0
    outside: list[tuple[int, str]] = []
    for match in _QUOTED_BEFORE.finditer(text):
        outside.append((last, text[last:match.start()]))
        last = match.end()
        inner = next(g for g in match.groups() if g is not None).strip()
        if inner:
            found.append((match.start(), StatedValue(inner, True)))
    outside.append((last, text[last:]))
    for offset, chunk in outside:
        for position, word in _words_at(chunk):
            if not _ORDINAL.match(word.lower()) and (
                    any(c.isdigit() for c in word) or "@" in word or "_" in word.strip("_")):
                found.append((offset + position, StatedValue(word, False)))
    return [value for _, value in sorted(found, key=lambda item: item[0])]


# quotes of every kind, next to every character that may open or close one
_ANSWER = st.lists(st.sampled_from([*"'\"`‘’“” \n(=[{:,.;!?)]}x7_@-", "id_1", "'a b'", "12", "3rd"]),
                   max_size=30).map("".join)


@settings(max_examples=1000, deadline=None)
@given(_ANSWER)
def test_an_answer_s_values_are_read_as_they_were_piece_by_piece(answer: str) -> None:
    assert [m.span() for m in _QUOTED.finditer(answer)] == [m.span() for m in _QUOTED_BEFORE.finditer(answer)]
    assert answer_values(answer) == _answer_values_piece_by_piece(answer)


@settings(max_examples=300, deadline=None)
@given(_ANSWER | _TEXT | st.text(max_size=12))
def test_plain_quotes_is_the_translation_whether_or_not_the_text_needs_one(text: str) -> None:
    assert plain_quotes(text) == text.translate(_QUOTES)
