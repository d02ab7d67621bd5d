"""The pure comparison core of replay: pointers, first differences, sources, fingerprints."""

from __future__ import annotations

import pytest

from benchmarks.certify.replay import compare_fingerprints, source_matches
from simulator.canonical import PointerError, first_difference, resolve_pointer, same_value


def test_resolve_pointer_follows_rfc_6901() -> None:
    doc = {"a/b": [{"~k": 1}], "list": [10, 20]}
    assert resolve_pointer(doc, "/a~1b/0/~0k") == 1 and resolve_pointer(doc, "") == doc
    for bad in ("/list/2", "/list/01", "/nope", "/list/0/x", "list"):
        with pytest.raises(PointerError):
            resolve_pointer(doc, bad)


def test_first_difference_names_the_pointer_in_sorted_key_order() -> None:
    assert first_difference({"b": 1, "a": [1, 2]}, {"a": [1, 3], "b": 2}) == ("/a/1", 2, 3)
    assert first_difference({"a": 1}, {"a": 1, "z": 0}) == ("/z", "<missing>", 0)
    assert first_difference([1], [1, 2]) == ("/1", "<missing>", 2)
    assert first_difference({"x": 1}, {"x": 1.0}) == ("/x", 1, 1.0)  # canonical JSON differs
    assert first_difference({"x": [1]}, {"x": [1]}) is None


def test_values_and_sources() -> None:
    assert same_value({"a": 1, "b": [1.0]}, {"b": [1], "a": 1}) and not same_value(True, 1)
    # a numeric id passed as a path string is the same request
    assert source_matches(12, "12") and source_matches("12", 12) and not source_matches(12, "13")
    assert not source_matches(True, "True")


def test_compare_fingerprints_names_the_first_differing_key() -> None:
    fp = {"env": "petstore", "seed": 0, "spec_sha256": "abc"}
    assert compare_fingerprints("petstore", fp, dict(fp)) is None
    d = compare_fingerprints("petstore", fp, {**fp, "spec_sha256": "def"})
    assert d is not None and (d.field, d.expected, d.got) == ("fingerprint.petstore.spec_sha256", "abc", "def")
    d = compare_fingerprints("petstore", fp, {**fp, "auth": "off"})
    assert d is not None and d.field == "fingerprint.petstore.auth" and d.expected == "<missing>"
