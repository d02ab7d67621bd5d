"""TextMemo: one compiled object per JSON text, for the plans' and the shaper's validators."""

from __future__ import annotations

from simulator.datagen.text_memo import TextMemo


def test_equal_texts_share_one_compiled_object_and_the_oldest_is_forgotten() -> None:
    calls: list[object] = []

    def compile_(document: object) -> list[object]:
        calls.append(document)
        return [document]

    memo = TextMemo(compile_, 2)
    first = memo({"type": "string"})
    assert memo({"type": "string"}) is first  # an equal document (another dict) is a hit
    assert len(calls) == 1
    memo({"type": "integer"})
    memo({"type": "boolean"})  # a third text: the first one is forgotten
    assert len(memo) == 2
    again = memo({"type": "string"})
    assert again == first and again is not first  # compiled again, to the same thing
    assert len(calls) == 4


def test_a_document_orjson_cannot_write_is_compiled_each_time() -> None:
    calls: list[object] = []
    memo = TextMemo(lambda document: calls.append(document) or len(calls), 8)
    assert memo({1: "a non-string key"}) == 1
    assert memo({1: "a non-string key"}) == 2
    assert memo({"big": 2**70}) == 3  # an integer past 64 bits
    assert len(memo) == 0
