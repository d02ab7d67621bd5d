"""Strings that match a regular expression: rstr's Xeger, made deterministic and bounded.

OpenAPI patterns are ECMA-262; Python's parser reads most of them. The few differences that
matter for generation (named groups, common ``\\p{...}`` classes) are translated; the validator
still judges the candidate against the original pattern.

One shared generator, not thread-safe on its own: callers hold
:data:`simulator.datagen.values.GENERATION_LOCK`, as :mod:`simulator.datagen.generate` does.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Sequence
from functools import lru_cache
from random import Random
from typing import Any

import rstr

try:  # Python >= 3.11
    import re._parser as _sre_parse  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover
    import sre_parse as _sre_parse


MAX_PATTERN_LENGTH = 100_000
"""Patterns whose shortest match is longer than this are not generated from (memory, time)."""


class PatternUnsupported(ValueError):
    """A pattern Python's regex parser (and so rstr) cannot generate from."""


class _SortedXeger(rstr.Rstr):  # type: ignore[misc]
    """rstr's Xeger with deterministic negated classes and a bounded repeat count.

    Upstream builds ``[^...]`` candidates and the ``nonword`` alphabet from a ``set``, whose
    order depends on PYTHONHASHSEED; both are sorted here. ``*``/``+``/``{n,}`` repeat at most
    ``repeat_limit`` times (upstream allows 100), keeping strings short and realistic.
    """

    def __init__(self) -> None:
        nonword = "".join(sorted(set(string.printable) - set(string.ascii_letters + string.digits + "_")))
        unambiguous = "".join(sorted(set(string.ascii_letters + string.digits) - set("0O1lI")))
        super().__init__(Random(0), nonword=nonword, unambiguous=unambiguous)
        self.repeat_limit = 8

    def _handle_in(self, value: Any) -> Any:
        candidates = list(itertools.chain(*(self._handle_state(item) for item in value)))
        if candidates and candidates[0] is False:
            excluded = set(candidates[1:])
            candidates = [ch for ch in string.printable if ch not in excluded]
        return self._random.choice(candidates)

    def _handle_repeat(self, start_range: int, end_range: int, value: Any) -> str:
        end_range = min(end_range, max(start_range, self.repeat_limit))
        times = self._random.randint(start_range, end_range)
        return "".join("".join(self._handle_state(item) for item in value) for _ in range(times))

    def generate(self, parsed: Sequence[Any], rng: Random, repeat_limit: int) -> str:
        self._random = rng
        self.repeat_limit = repeat_limit
        try:
            return str(self._build_string(parsed))
        finally:
            self._cache.clear()


_XEGER = _SortedXeger()


# ECMA-262 Unicode property escapes Python's re lacks, narrowed to ASCII for generation only (the
# validator still checks the original pattern).
_PROPERTY_ESCAPES = {
    r"\p{L}": "a-zA-Z",
    r"\p{Letter}": "a-zA-Z",
    r"\p{Lu}": "A-Z",
    r"\p{Ll}": "a-z",
    r"\p{N}": "0-9",
    r"\p{Nd}": "0-9",
    r"\p{Alpha}": "a-zA-Z",
}


def _python_pattern(pattern: str) -> str:
    # ECMA-262 named groups are written (?<name>...); Python wants (?P<name>...).
    text = pattern.replace("(?<", "(?P<").replace("(?P<=", "(?<=").replace("(?P<!", "(?<!")
    if "\\p{" not in text:
        return text
    out: list[str] = []
    in_class = False
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            end = text.find("}", index)
            escape = text[index : end + 1] if text.startswith("\\p{", index) and end > 0 else ""
            if escape in _PROPERTY_ESCAPES:
                ranges = _PROPERTY_ESCAPES[escape]
                out.append(ranges if in_class else f"[{ranges}]")
                index = end + 1
                continue
            out.append(text[index : index + 2])
            index += 2
            continue
        if char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        out.append(char)
        index += 1
    return "".join(out)


@lru_cache(maxsize=2048)
def _parse_pattern(pattern: str) -> Any:
    python_pattern = _python_pattern(pattern)
    try:
        parsed = _sre_parse.parse(python_pattern)
        shortest = parsed.getwidth()[0]
    except Exception as error:  # re.error, RecursionError, OverflowError
        raise PatternUnsupported(f"pattern {pattern!r} cannot be parsed: {error}") from error
    if shortest > MAX_PATTERN_LENGTH:
        raise PatternUnsupported(
            f"pattern {pattern!r} only matches strings over {MAX_PATTERN_LENGTH} characters"
        )
    return parsed


def string_for_pattern(pattern: str, rng: Random, repeat_limit: int = 8) -> str:
    """A string the regex ``pattern`` matches (best effort: lookarounds and backrefs may not hold)."""
    parsed = _parse_pattern(pattern)
    try:
        return _XEGER.generate(parsed, rng, repeat_limit)
    except (KeyError, IndexError, ValueError, TypeError, RecursionError) as error:
        raise PatternUnsupported(f"pattern {pattern!r} cannot be generated: {error}") from error
