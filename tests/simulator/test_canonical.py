"""simulator.canonical: the bytes the kit hashes (canonical JSON), the JSON Pointers it addresses
values by (RFC 6901), and the strict equality replay compares by."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.canonical import (
    MISSING,
    PointerError,
    canonical_json,
    canonical_sha256,
    escape_token,
    first_difference,
    join_pointer,
    json_bytes,
    lookup_pointer,
    pointer_tokens,
    pretty_json,
    resolve_pointer,
    same_value,
    sha256_hex,
    strict_canonical_json,
    unescape_token,
)

# --- canonical bytes ----------------------------------------------------------------------------


def test_keys_are_sorted_at_every_depth_and_there_is_no_whitespace() -> None:
    value = {"b": {"z": 1, "a": [{"y": 2, "x": 3}]}, "a": None}
    assert canonical_json(value) == b'{"a":null,"b":{"a":[{"x":3,"y":2}],"z":1}}'
    assert json_bytes(value) == b'{"b":{"z":1,"a":[{"y":2,"x":3}]},"a":null}'  # insertion order kept


@pytest.mark.parametrize(("value", "expected"), [
    (1.0, b"1.0"),
    (1, b"1"),
    (0.1, b"0.1"),
    (1e16, b"1e+16"),
    (1e-7, b"1e-7"),
    (-0.0, b"-0.0"),
    (float("nan"), b"null"),  # orjson writes non-finite floats as null
    (True, b"true"),
])
def test_numbers_keep_their_type_in_the_bytes(value: object, expected: bytes) -> None:
    assert canonical_json(value) == expected


def test_unicode_is_written_as_utf8_and_control_characters_escaped() -> None:
    assert canonical_json({"k": "é\u2028😀\n"}) == '{"k":"é\u2028😀\\n"}'.encode()


def test_what_orjson_refuses_falls_back_to_ascii_escaped_json() -> None:
    # a client may send an integer wider than 64 bits; a lone surrogate cannot be UTF-8
    assert canonical_json({"n": -(2**90), "s": "é"}) == b'{"n":-1237940039285380274899124224,"s":"\\u00e9"}'
    assert canonical_json(["\udcff"]) == b'["\\udcff"]'


def test_non_string_keys_are_written_as_strings_sorted_as_text() -> None:
    assert canonical_json({2: "b", 10: "a"}) == b'{"10":"a","2":"b"}'


def test_strict_canonical_json_refuses_what_orjson_cannot_read_back() -> None:
    assert strict_canonical_json({"b": 1, "a": 2}) == canonical_json({"b": 1, "a": 2})
    for refused in (2**70, "\udcff", {1: 2}):
        with pytest.raises(TypeError):
            strict_canonical_json(refused)


def test_hashes_are_sha256_of_the_canonical_bytes() -> None:
    assert sha256_hex(b"abc") == hashlib.sha256(b"abc").hexdigest()
    assert canonical_sha256({"b": 1, "a": 2}) == hashlib.sha256(b'{"a":2,"b":1}').hexdigest()
    assert canonical_sha256({"a": 2, "b": 1}) == canonical_sha256({"b": 1, "a": 2})


def test_pretty_json_is_sorted_indented_utf8_with_a_final_newline() -> None:
    assert pretty_json({"b": "é", "a": [1e-7]}) == '{\n  "a": [\n    1e-07\n  ],\n  "b": "é"\n}\n'


NESTED_VALUES = [
    {"b": 1, "a": {"d": [1, {"y": None, "x": 2.5}], "c": "é"}},
    [{"z": True, "": False}, {"b": {"b": {}}, "a": []}],
    {"~": {"/": 1}, "a": [[], {}], "A": -(2**70)},  # the fallback path sorts the same way
]


@pytest.mark.parametrize("value", NESTED_VALUES)
def test_canonical_bytes_do_not_depend_on_key_order(value: object) -> None:
    def reverse(item: object) -> object:
        if isinstance(item, dict):
            return {k: reverse(item[k]) for k in reversed(list(item))}
        if isinstance(item, list):
            return [reverse(x) for x in item]
        return item

    assert canonical_json(reverse(value)) == canonical_json(value)
    assert same_value(reverse(value), value) and first_difference(value, reverse(value)) is None


# --- JSON Pointer (RFC 6901) --------------------------------------------------------------------

RFC_DOCUMENT = {
    "foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3, "g|h": 4, "i\\j": 5, 'k"l': 6, " ": 7,
    "m~n": 8,
}


@pytest.mark.parametrize(("pointer", "expected"), [  # RFC 6901 section 5, verbatim
    ("", RFC_DOCUMENT),
    ("/foo", ["bar", "baz"]),
    ("/foo/0", "bar"),
    ("/", 0),
    ("/a~1b", 1),
    ("/c%d", 2),
    ("/e^f", 3),
    ("/g|h", 4),
    ("/i\\j", 5),
    ('/k"l', 6),
    ("/ ", 7),
    ("/m~0n", 8),
])
def test_rfc_6901_examples_resolve(pointer: str, expected: object) -> None:
    assert resolve_pointer(RFC_DOCUMENT, pointer) == expected
    assert lookup_pointer(RFC_DOCUMENT, pointer) == (True, expected)


@pytest.mark.parametrize(("pointer", "why"), [
    ("foo", "no leading slash"),
    ("/foo/2", "index past the end"),
    ("/foo/01", "leading zero"),
    ("/foo/-", "'-' names the element after the last"),
    ("/foo/0/x", "a string has no members"),
    ("/nope", "absent key"),
    ("/m~1n", "~1 is '/', so this is 'm/n'"),
])
def test_pointers_that_name_nothing_are_refused(pointer: str, why: str) -> None:
    with pytest.raises(PointerError):
        resolve_pointer(RFC_DOCUMENT, pointer)
    assert lookup_pointer(RFC_DOCUMENT, pointer) == (False, None), why


def test_escaping_order_matters() -> None:
    # "~01" is the token "~1" (unescape ~1 first, then ~0), never "/"
    assert unescape_token("~01") == "~1" and escape_token("~1") == "~01"
    assert escape_token("a/b~c") == "a~1b~0c" and escape_token("plain") == "plain"
    assert pointer_tokens("/a~1b/~0/") == ["a/b", "~", ""] and pointer_tokens("") == []
    assert join_pointer("/paths", "/pet/{id}", "get", 0) == "/paths/~1pet~1{id}/get/0"


@pytest.mark.parametrize("tokens", [[], [""], ["a/b", "~", "~1", "/~0"], ["0", "01", "-"], ["é", " ", "%25"]])
def test_tokens_round_trip_through_a_pointer(tokens: list[str]) -> None:
    assert pointer_tokens(join_pointer("", *tokens)) == tokens
    for token in tokens:
        assert unescape_token(escape_token(token)) == token


# --- strict equality ----------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b", "equal"), [
    ("12", 12, False),  # a numeric string is not the number
    (1, True, False),  # a flag is not a number
    (0, False, False),
    (True, True, True),
    (1, 1.0, True),  # one JSON number
    (None, None, True),
    (None, 0, False),
    ("", None, False),
    ([1, 2], [2, 1], False),  # order matters in lists
    ({"a": 1, "b": [1.0]}, {"b": [1], "a": 1}, True),  # not in objects
    ({"a": 1}, {"a": 1, "b": None}, False),  # an absent key is not a null
    ([True], [1], False),
])
def test_same_value_is_strict_about_types(a: object, b: object, equal: bool) -> None:
    assert same_value(a, b) is equal and same_value(b, a) is equal


def test_first_difference_names_the_first_differing_pointer_in_sorted_order() -> None:
    assert first_difference({"b": 1, "a": [1, 2]}, {"a": [1, 3], "b": 2}) == ("/a/1", 2, 3)
    assert first_difference({"a": 1}, {"a": 1, "z": 0}) == ("/z", MISSING, 0)
    assert first_difference([1], [1, 2]) == ("/1", MISSING, 2)
    assert first_difference({"a/b": {"~": 1}}, {"a/b": {"~": 2}}) == ("/a~1b/~0", 1, 2)
    # stricter than same_value: the bytes differ, so replay reports 1 against 1.0
    assert first_difference({"x": 1}, {"x": 1.0}) == ("/x", 1, 1.0) and same_value({"x": 1}, {"x": 1.0})
    assert first_difference({"x": [1]}, {"x": [1]}) is None


_JSON_WITHOUT_FLOATS = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4), max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(_JSON_WITHOUT_FLOATS)
def test_pretty_json_is_the_standard_library_s_text_whichever_writer_writes_it(value: object) -> None:
    # orjson writes what it can (no floats, no subclasses; not beyond 64-bit integers or lone
    # surrogates): the same bytes as json.dumps(sort_keys=True, indent=2, ensure_ascii=False)
    assert pretty_json(value) == json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def test_pretty_json_leaves_floats_and_subclasses_to_the_standard_library() -> None:
    class Name(str):
        pass

    assert pretty_json({"a": 1e16, "b": [1e-07, 0.5]}) == '{\n  "a": 1e+16,\n  "b": [\n    1e-07,\n    0.5\n  ]\n}\n'
    assert pretty_json({"k": Name("v"), "s": "\ud800", "n": 2**64}) == (
        '{\n  "k": "v",\n  "n": 18446744073709551616,\n  "s": "\ud800"\n}\n')
    assert pretty_json({}) == "{}\n" and pretty_json([]) == "[]\n"
