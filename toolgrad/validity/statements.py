"""What a text states: the normalisation by which a value counts as stated in a query, the
concrete values an answer states, and whether such a value occurs in a set of responses.

Pure functions; the validity checks (:mod:`toolgrad.validity.checks`) are built on them.

**Normalisation.** Text and string values are compared case-folded, with every run of
whitespace as one space and typographic quotes as plain ones. A string value is stated when it
occurs in the query with no letter or digit joined to either end (``'sold'`` is stated by
"been sold", not by "unsold"). A number is stated when a word of the query, stripped of
surrounding punctuation, quotes, currency and percent signs and thousands separators, is the
same number (``37461.0`` is stated by "37461", ``1000`` by "1,000"). A boolean is stated when its
property name, as words (``reminder_set`` -> "reminder set"), occurs in the query: a check
without a model cannot tell "private" from "not private".

**Concrete values of an answer.** Every quoted string (``'...'``, ``"..."``, ``“...”``, ``‘...’``,
`` `...` ``; an apostrophe inside a word, as in "pet's", opens nothing), and, outside quotes,
every word that holds a digit (numbers, ids such as ``her-17572``, UUIDs, dates), an ``@``
(e-mail addresses) or an inner ``_`` (identifiers). Ordinals ("3rd") are not values. Plain
capitalised words are not checked: without a model a name cannot be told from a word (the
``--judge`` check covers what this one cannot).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "})
_TYPOGRAPHIC = re.compile("[\u2018\u2019\u201c\u201d\u00a0]")


def plain_quotes(text: str) -> str:
    """``text`` with typographic quotes as plain ones and no-break spaces as spaces (translated
    only when it holds one: translating looks up every character, and most texts are ASCII)."""
    return text if text.isascii() or not _TYPOGRAPHIC.search(text) else text.translate(_QUOTES)
_WORD_EDGE = "\"'`()[]{}<>,;:!?*$€£%"
_ORDINAL = re.compile(r"^\d+(st|nd|rd|th)$")
_NUMBER = re.compile(r"^[-+]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?([eE][-+]?\d+)?$")
# a quote opens at the text's start or after a space, an opening bracket, ":", "," or "=" (the
# check looks back from the quote, so the pattern starts with one: the regex engine skips to quotes)
_QUOTED = re.compile(
    r"""(?:'(?<![^\s(\[{:,=]')([^'\n]+?)'|"(?<![^\s(\[{:,=]")([^"\n]+?)"|`(?<![^\s(\[{:,=]`)([^`\n]+?)`)"""
    r"""(?=$|[\s.,;:!?)\]}])"""
)


# Pure functions of a string, asked again and again for the same strings (every response of a
# sample is indexed twice, and list responses repeat the same records across samples): remembered,
# a bounded number of them.
_MEMO = 1 << 16


@functools.lru_cache(maxsize=_MEMO)
def normal_text(text: str) -> str:
    """Case-folded, whitespace runs as one space, typographic quotes as plain ones."""
    return " ".join(plain_quotes(text).casefold().split())


def words_of(name: str) -> str:
    """A property name as normalised words: ``reminderSet`` / ``reminder_set`` -> "reminder set"."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return normal_text(re.sub(r"[_\-.]+", " ", spaced))


@functools.lru_cache(maxsize=_MEMO)
def number_of(word: str) -> Decimal | None:
    """The number a word spells (``"1,000"``, ``"37461.0"``, ``"-2"``), else None."""
    if not _NUMBER.match(word):
        return None
    try:
        return Decimal(word.replace(",", ""))
    except InvalidOperation:
        return None


def scalar_number(value: Any) -> Decimal | None:
    """A JSON number (or a string that spells one) as a Decimal; booleans are not numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    if isinstance(value, str):
        return number_of(value.strip())
    return None


def contains_phrase(haystack: str, needle: str) -> bool:
    """``needle`` occurs in ``haystack`` (both normalised) with no letter or digit joined to it."""
    if not needle:
        return False
    start = haystack.find(needle)
    while start != -1:
        end = start + len(needle)
        before_ok = start == 0 or not (haystack[start - 1].isalnum() and needle[0].isalnum())
        after_ok = end == len(haystack) or not (haystack[end].isalnum() and needle[-1].isalnum())
        if before_ok and after_ok:
            return True
        start = haystack.find(needle, start + 1)
    return False


@dataclass(frozen=True, slots=True)
class Text:
    """A text prepared once for many "is this value stated?" questions."""

    normal: str
    numbers: frozenset[Decimal]
    # string value -> whether the text states it: the checks ask about the same values again
    # (each leaf by solvable and coherent, each list item's identifiers for every leaf taken from it)
    _strings: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    @staticmethod
    def of(text: str) -> Text:
        """The prepared text (the same object for a text asked about again soon)."""
        return _text_of(text)

    def states(self, value: Any, key: str = "") -> bool:
        """Whether the text states ``value`` (the module text says how); ``key`` is the property
        that holds a boolean."""
        kind = type(value)
        if kind is str:  # the common cases first; the same answers as the general path below
            stated = self._strings.get(value)
            if stated is None:
                number = number_of(value.strip())
                stated = self._strings[value] = (number is not None and number in self.numbers) or contains_phrase(
                    self.normal, normal_text(value))
            return stated
        if kind is int:  # an int is in the set exactly when Decimal(str(it)) is (numbers hash and compare by value)
            return value in self.numbers
        if isinstance(value, bool):
            return bool(key) and contains_phrase(self.normal, words_of(key))
        number = scalar_number(value)
        if number is not None and number in self.numbers:
            return True
        if isinstance(value, str):
            return contains_phrase(self.normal, normal_text(value))
        return False


# -- the values an answer states ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatedValue:
    text: str  # as written (without its quotes)
    quoted: bool


def answer_values(answer: str) -> list[StatedValue]:
    """The concrete values ``answer`` states, in order of appearance (see the module text)."""
    return list(_answer_values(answer))


@functools.lru_cache(maxsize=256)  # a sample's checks ask for its query and answer more than once
def _text_of(text: str) -> Text:
    normal = normal_text(text)
    # only a word holding a digit can spell a number: the others are not looked at
    return Text(normal, frozenset(n for _, w in _words_at(normal, _HAS_DIGIT) if (n := number_of(w)) is not None))


@functools.lru_cache(maxsize=256)
def _answer_values(answer: str) -> tuple[StatedValue, ...]:
    text = plain_quotes(answer)
    found: list[tuple[int, StatedValue]] = []
    last = 0
    # the text with each quoted value blanked out (spaces): its words are the words outside quotes,
    # at their places in the text, read in one pass
    outside: list[str] = []
    for match in _QUOTED.finditer(text):
        start, end = match.span()
        outside += (text[last:start], " " * (end - start))
        last = end
        inner = next(g for g in match.groups() if g is not None).strip()
        if inner:
            found.append((start, StatedValue(inner, True)))
    outside.append(text[last:])
    for position, word in _words_at("".join(outside), _MAY_BE_VALUE):
        if _ORDINAL.match(word.lower()):
            continue
        if any(c.isdigit() for c in word) or "@" in word or "_" in word.strip("_"):
            found.append((position, StatedValue(word, False)))
    return tuple(value for _, value in sorted(found, key=lambda item: item[0]))


_ANY_WORD = re.compile(r"\S+")
# The whole whitespace-separated words that hold a character of a class (a word starts where no
# non-space precedes it, and the greedy tails run to its end), to skip the words that cannot matter:
# a digit (a number needs one: _NUMBER's \d), or what an answer's value needs (a digit, "@" or "_";
# str.isdigit is true for no other ASCII character, so every non-ASCII character is let through).
_HAS_DIGIT = re.compile(r"(?<!\S)\S*\d\S*")
_MAY_BE_VALUE = re.compile(r"(?<!\S)\S*(?:[0-9@_]|[^\x00-\x7f\s])\S*")  # not a space (some are not ASCII)


def _words_at(text: str, words: re.Pattern[str] = _ANY_WORD) -> Iterator[tuple[int, str]]:
    """(offset, word) for each whitespace-separated word stripped of quotes, brackets, signs
    and full stops (a sentence's full stop is not part of "37461.0."); with ``words``, only the
    whitespace-separated words it matches whole."""
    for match in words.finditer(text):
        word = match.group().strip(_WORD_EDGE + ".")
        if word:
            yield match.start(), word


# a date or a date-time as one word (ISO 8601, case-folded: JSON's ``date`` and ``date-time``)
_DATE = re.compile(r"^(\d{4})-\d{2}-(\d{2})(?:t\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:z|[+-]\d{2}:?\d{2})?)?$")


@functools.lru_cache(maxsize=_MEMO)
def _string_facts(text: str) -> tuple[str, Decimal | None, tuple[Decimal, ...]]:
    """A response's string as the index holds it: normalised, the number it spells, and the
    numbers a text states by it (:func:`word_numbers`)."""
    normal = normal_text(text)
    return normal, number_of(text.strip()), word_numbers(normal)


def word_numbers(normal: str) -> tuple[Decimal, ...]:
    """The numbers a normalised text states as whole words: each word (stripped as a query's
    are) that spells a number, and the year and the day of each word that is a date or a
    date-time ("July 28, 2023" restates ``2023-07-28T23:12:12Z``). A date's other digits (its
    month, which a text names rather than numbers; its minutes) and a version's parts ("12" of
    "5.12.9") are not numbers it states: small numbers, a count among them, would be grounded
    by any timestamp."""
    found: list[Decimal] = []
    for _, word in _words_at(normal, _HAS_DIGIT):
        number = number_of(word)
        if number is not None:
            found.append(number)
        elif date := _DATE.match(word):
            found += (Decimal(part) for part in date.groups())
    return tuple(found)


# typed: 1, 1.0 and True are equal keys otherwise, and True is no number
_scalar_number = functools.lru_cache(maxsize=_MEMO, typed=True)(scalar_number)


# -- where a stated value occurs ---------------------------------------------------------------


@dataclass(slots=True)
class ResponseIndex:
    """The scalars of some responses, the lengths of their lists and the steps' statuses, to
    ask whether a value an answer states occurs among them."""

    strings: set[str] = field(default_factory=set)  # normalised string scalars
    # numeric scalars and numeric strings (an int as itself: equal to its Decimal, with the same hash)
    numbers: set[Decimal | int] = field(default_factory=set)
    lengths: set[int] = field(default_factory=set)  # len() of every list
    booleans: set[bool] = field(default_factory=set)
    # the numbers the string scalars state as words (word_numbers): "12" of "at 12 Main Street"
    word_numbers: set[Decimal] = field(default_factory=set)

    @classmethod
    def of(cls, responses: Iterable[Any], statuses: Iterable[int] = ()) -> ResponseIndex:
        index = cls()
        for response in responses:
            index.add(response)
        index.numbers.update(Decimal(s) for s in statuses)
        return index

    def add(self, node: Any) -> None:
        stack = [node]
        pop, extend = stack.pop, stack.extend
        strings, numbers, lengths, worded = self.strings, self.numbers, self.lengths, self.word_numbers
        while stack:
            item = pop()
            kind = type(item)  # parsed JSON holds exactly these types: told apart by identity, the commonest first
            if kind is str:
                normal, number, spelled = _string_facts(item)
                strings.add(normal)
                if number is not None:
                    numbers.add(number)
                worded.update(spelled)
            elif kind is dict:
                extend(item.values())
            elif kind is list:
                lengths.add(len(item))
                extend(item)
            elif kind is int:  # held as itself: it equals, and hashes as, Decimal(str(item))
                numbers.add(item)
            elif item is None:
                continue
            else:
                self._add_other(item, stack)

    def _add_other(self, item: Any, stack: list[Any]) -> None:
        """A boolean, a float, or a value of a subclass of a JSON type (as that type)."""
        if isinstance(item, bool):
            self.booleans.add(item)
        elif isinstance(item, str):
            normal, number, spelled = _string_facts(item)
            self.strings.add(normal)
            if number is not None:
                self.numbers.add(number)
            self.word_numbers.update(spelled)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            self.lengths.add(len(item))
            stack.extend(item)
        elif (number := _scalar_number(item)) is not None:
            self.numbers.add(number)

    def holds(self, value: StatedValue, *, counts: bool = True) -> bool:
        """Whether a stated value occurs: equal to a scalar (numbers by value), inside a string
        scalar with no letter or digit joined to it (a number: as a word of it, or a date's
        year or day; see :func:`word_numbers`), or, with ``counts``, a whole number
        equal to the length of a list."""
        normal = normal_text(value.text)
        number = number_of(normal)
        if number is not None:
            # not found inside a string by its digits: "12" is no word of "23:12:12z" or "5.12.9"
            return number in self.numbers or number in self.word_numbers or (
                counts and number == number.to_integral_value() and int(number) in self.lengths)
        if normal in self.strings:
            return True
        if normal in ("true", "false") and (normal == "true") in self.booleans:
            return True
        return any(contains_phrase(s, normal) for s in self.strings if len(s) > len(normal))


def first_unheld(responses: Sequence[Any], statuses: Sequence[int], values: Iterable[StatedValue],
                 written: Callable[[], Iterable[Written]] | None = None) -> StatedValue | None:
    """The first of ``values`` that the responses (and the statuses) do not hold, by
    :meth:`ResponseIndex.holds`; None when they hold every one. ``written``: what the responses
    hold as written, when the caller has it: each call gives :meth:`Written.of` them all, or of
    each (in any order: made as they are asked for, the ones after a hit are never made).

    Most stated values are a response's string as written or a number it holds, so the
    responses are first looked at as written (no string normalised); the index, which
    normalises every string, is built only for a value that look does not find."""
    if written is None:
        whole = [Written.of(responses)]
        written = whole.__iter__
    codes = set(statuses)
    index: ResponseIndex | None = None
    for value in values:
        normal = normal_text(value.text)
        number = number_of(normal)
        if number is not None and number in codes:
            continue  # a step's status: what the index holds too
        if any(w.holds_as(value.text, normal, number) for w in written()):
            continue
        if index is None:
            index = ResponseIndex.of(responses, statuses)
        if not index.holds(value):
            return value
    return None


@dataclass(slots=True)
class Written:
    """Some responses as written: their strings, their ints and floats as numbers, the lengths
    of their lists. What it holds (:meth:`holds`) a :class:`ResponseIndex` of the same responses
    holds too; what it does not, the index may still hold (once normalised)."""

    strings: set[str]
    numbers: set[Decimal | int]
    lengths: set[int]

    @classmethod
    def of(cls, responses: Iterable[Any]) -> Written:
        strings: set[str] = set()
        numbers: set[Decimal | int] = set()
        lengths: set[int] = set()
        stack: list[Any] = [list(responses)]  # the responses as the items of a list (its length not counted)
        add_string, add_number = strings.add, numbers.add
        first = True
        while stack:
            node = stack.pop()
            if type(node) is dict:
                items: Iterable[Any] = node.values()
            else:  # a list
                if not first:
                    lengths.add(len(node))
                first, items = False, node
            # a scalar is looked at where it is found, not pushed: most nodes are scalars in objects
            for item in items:
                kind = type(item)
                if kind is str:
                    add_string(item)
                elif kind is dict or kind is list:
                    stack.append(item)
                elif kind is int:
                    add_number(item)
                elif kind is float and (number := _scalar_number(item)) is not None:
                    add_number(number)
        return cls(strings, numbers, lengths)

    def holds(self, value: StatedValue) -> bool:
        """Whether the responses surely hold ``value`` (a False leaves it to the index)."""
        normal = normal_text(value.text)
        return self.holds_as(value.text, normal, number_of(normal))

    def holds_as(self, text: str, normal: str, number: Decimal | None) -> bool:
        """:meth:`holds` of a value written ``text``, normalised ``normal``, spelling ``number``."""
        if number is not None and (number in self.numbers or (
                number == number.to_integral_value() and int(number) in self.lengths)):
            return True  # a number or a list length: what the index holds too
        # a string whose normal form is the value's
        return text in self.strings or (normal in self.strings and normal_text(normal) == normal)
