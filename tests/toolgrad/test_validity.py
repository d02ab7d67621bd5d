"""The validity checks as pure functions: the normalisation a value is stated by, the values an
answer states, the exemptions, and each check's first finding (step, place, value)."""

from __future__ import annotations

from typing import Any

import pytest

from toolgrad.records import ArgumentSource, Chain, Step
from toolgrad.validity.checks import (
    check_coherent,
    check_grounded,
    check_solvable,
    duplicate_findings,
    exemption,
    item_identifiers,
    names_item,
    sample_findings,
)
from toolgrad.validity.statements import ResponseIndex, Text, answer_values
from toolgrad.validity.tool_terms import ToolTerms

PETS = [{"id": 1, "name": "Rex", "status": "sold"}, {"id": 2, "name": "Fido", "status": "sold"},
        {"id": 3, "name": "Rex", "status": "pending"}]
READ = ToolTerms({"type": "object", "properties": {}}, frozenset(), writes=False)
WRITE = ToolTerms({
    "type": "object",
    "properties": {
        "kind": {"type": "string", "enum": ["pet"]},
        "api_key": {"type": "string"},
        "body": {"type": "object", "properties": {"size": {"type": "integer", "default": 10},
                                                  "tag": {"type": "string", "const": "v1"}}},
    },
}, frozenset({"api_key"}), writes=True)


def step(tool: str, arguments: dict[str, Any], response: Any, sources: dict[str, ArgumentSource] | None = None,
         status: int = 200) -> Step:
    return Step(env="petstore", tool=tool, operation_id=tool, arguments=arguments, sources=sources or {},
                status=status, response=response, state_hash="h")


def src(pointer: str, chain: int = 0, index: int = 0) -> ArgumentSource:
    return ArgumentSource(chain=chain, step=index, pointer=pointer)


def terms_by_tool(step: Step) -> ToolTerms:
    return WRITE if step.tool.startswith(("add", "update", "place")) else READ


# -- what a text states ---------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "key", "stated"), [
    ("Sold", "", True),  # case
    ("big  red\ndog", "", True),  # whitespace runs
    ("sold", "", True),
    (37461.0, "", True),  # "37461" states 37461.0
    (1000, "", True),  # "1,000" states 1000
    ("12", "", True),
    ("old", "", False),  # inside "sold" and "gold": joined to letters
    (999, "", False),
    (True, "reminder_set", True),  # a boolean by its property's words
    (False, "urgent", False),
])
def test_what_a_query_states_after_normalisation(value: Any, key: str, stated: bool) -> None:
    text = Text.of("Find the SOLD pets, the big red dog and order 12 (1,000 units) for ID 37461. Reminder set: yes.")
    assert text.states(value, key) is stated, f"{value!r} stated: {stated}"


def test_the_values_an_answer_states() -> None:
    answer = ("The pet's name is 'Rex' and its tag \u201cblue\u201d; order her-17572 has quantity 8, "
              "placed 2024-01-01, by a@b.io for item_id. It was the 3rd result, with 5 result(s).")
    values = [(v.text, v.quoted) for v in answer_values(answer)]
    assert values == [("Rex", True), ("blue", True), ("her-17572", False), ("8", False), ("2024-01-01", False),
                      ("a@b.io", False), ("item_id", False), ("5", False)]


def test_an_answer_value_occurs_in_a_response_by_value_inside_a_text_or_as_a_count() -> None:
    index = ResponseIndex.of([PETS, {"note": "Rex sleeps at 12 Main Street", "price": 7.5}], [201])
    held = {text: index.holds(v) for v in answer_values(
        "'rex' 'Main Street' 7.50 3 201 'Whiskers' 99 'Street 12'") for text in [v.text]}
    assert held == {"rex": True, "Main Street": True, "7.50": True, "3": True, "201": True,
                    "Whiskers": False, "99": False, "Street 12": False}


def test_a_number_is_held_by_a_text_as_a_word_or_a_dates_calendar_part_not_by_any_digits() -> None:
    # bad input: an answer whose count (12) the responses hold only as the minutes and seconds of
    # a timestamp and inside a version string; it was grounded by those digits
    index = ResponseIndex.of([{"created_at": "2023-07-28T23:12:12Z", "version": "5.12.9", "due": "2024-02-09",
                               "note": "ships in 3 days, not before 2024-03-01"}])
    held = {text: index.holds(v) for v in answer_values(
        "12 23 2023 July 28, 7 07 2024-02-09 9 3 '5.12.9' '12.9' 1 2024") for text in [v.text]}
    assert held == {"12": False, "23": False, "2023": True, "28": True, "7": False, "07": False,
                    "2024-02-09": True, "9": True, "3": True, "5.12.9": True, "12.9": False, "1": True,
                    "2024": True}  # "1": the day of 2024-03-01; "12.9": a part of "5.12.9", not a word


def test_exemptions_are_fixed_values_credentials_and_empty_values() -> None:
    assert exemption(WRITE, "/kind", "pet") == "the schema's only enum value"
    assert exemption(WRITE, "/body/tag", "v1") == "the schema's const"
    assert exemption(WRITE, "/body/size", 10) == "the schema's default"
    assert exemption(WRITE, "/body/size", 11) == ""  # not the default: a user must say it
    assert exemption(WRITE, "/api_key", "secret") == "a credential"
    assert exemption(READ, "/anything", None) and exemption(READ, "/x", "  ")
    assert exemption(None, "/kind", "pet") == ""  # no schema known: nothing is fixed


def test_an_item_is_named_only_by_a_value_no_other_item_holds() -> None:
    assert names_item(Text.of("the pet called Fido"), PETS, 1)
    assert not names_item(Text.of("the pet called Rex"), PETS, 0), "two pets are called Rex"
    assert names_item(Text.of("the pending one"), PETS, 2)
    assert not names_item(Text.of("the 1st item"), PETS, 0)


# -- solvable -------------------------------------------------------------------------------------


def chains_of(*steps: Step) -> list[Chain]:
    return [Chain(steps=list(steps))]


def test_solvable_names_the_first_value_the_query_leaves_unstated() -> None:
    chains = chains_of(step("addPet", {"kind": "pet", "api_key": "k", "name": "Rex", "body": {"size": 4}}, {"id": 9}))
    found = check_solvable(chains, "Add a pet named Rex.", terms_by_tool)
    assert found is not None and (found.chain, found.step, found.at, found.value) == (0, 0, "/body/size", 4)
    assert "neither stated" in found.reason
    assert check_solvable(chains, "Add a pet named Rex, size 4.", terms_by_tool) is None


def test_solvable_accepts_a_value_from_a_named_list_item_only() -> None:
    chains = chains_of(step("findPets", {"status": "sold"}, PETS),
                       step("getPet", {"petId": 2}, PETS[1], {"/petId": src("/1/id")}))
    assert check_solvable(chains, "Find the sold pets, then show me Fido.", terms_by_tool) is None
    found = check_solvable(chains, "Find the sold pets, then show me the second one.", terms_by_tool)
    assert found is not None and (found.step, found.at) == (1, "/petId")
    assert "item 2 of the 3-item list" in found.reason


def test_solvable_checks_that_a_recorded_source_holds() -> None:
    chains = chains_of(step("findPets", {"status": "sold"}, PETS),
                       step("getPet", {"petId": 5}, {}, {"/petId": src("/1/id")}))
    found = check_solvable(chains, "Sold pets, then Fido.", terms_by_tool)
    assert found is not None and "does not hold it" in found.reason


def test_an_enclosing_source_covers_the_leaves_inside_it() -> None:
    chains = chains_of(step("getPet", {"petId": 7}, {"pet": {"name": "Rex", "tags": ["a"]}}),
                       step("updatePet", {"body": {"name": "Rex", "tags": ["a"]}}, {"id": 7},
                            {"/body": src("/pet")}))
    assert check_solvable(chains, "Show pet 7 and save it again.", terms_by_tool) is None


# -- grounded, coherent, unique -------------------------------------------------------------------


def test_grounded_names_an_answer_value_no_response_holds() -> None:
    chains = chains_of(step("getPet", {"petId": 1}, PETS[0]))
    assert check_grounded(chains, "Pet 1 is 'Rex', status 'sold'.") is None
    found = check_grounded(chains, "Pet 1 is 'Rex', ordered with quantity 2.")
    assert found is not None and (found.at, found.value) == ("answer", "2")


def test_coherent_names_a_step_fed_from_two_list_items() -> None:
    chains = chains_of(step("findPets", {"status": "sold"}, PETS),
                       step("updatePet", {"id": 1, "name": "Fido"}, {"id": 1, "name": "Fido"},
                            {"/id": src("/0/id"), "/name": src("/1/name")}))
    found = check_coherent(chains, "Find the sold pets and rename one.", "Pet 1 is now 'Fido'.", terms_by_tool)
    assert found is not None and found.step == 1 and found.value == [1, 2]
    assert "2 different items" in found.reason and found.at == "/id, /name"
    # unless the query names each item (pet 1 by its id, Fido by its name: values no other item holds)
    named = check_coherent(chains, "Find the sold pets; give pet 1 the name of Fido.", "Pet 1 is now 'Fido'.",
                           terms_by_tool)
    assert named is None


def test_coherent_names_a_step_that_is_not_needed() -> None:
    chains = chains_of(step("findPets", {"status": "sold"}, PETS), step("getPet", {"petId": 2}, PETS[1]))
    found = check_coherent(chains, "Sold pets, and pet 2.", "Pet 2 is 'Fido'.", terms_by_tool)
    assert found is None, "the list feeds nothing, but the answer states a value from it"
    found = check_coherent(chains, "Sold pets, and pet 2.", "'Rex' is sold.", terms_by_tool)
    assert found is not None and (found.chain, found.step, found.value) == (0, 1, "getPet")
    assert "not needed" in found.reason
    writes = chains_of(step("addPet", {"name": "Rex"}, {"id": 4}))
    assert check_coherent(writes, "Add Rex.", "Done.", terms_by_tool) is None, "a write is needed"


def test_every_per_sample_check_is_reported_separately() -> None:
    chains = chains_of(step("getPet", {"petId": 1}, PETS[0]))
    findings = sample_findings(chains, "Show me a pet.", "It is 'Whiskers'.", terms_by_tool)
    assert {k: v is not None for k, v in findings.items()} == {"solvable": True, "grounded": True, "coherent": True}


def test_unique_names_the_line_a_repeated_id_or_seed_repeats() -> None:
    found = duplicate_findings([(1, "a", 0), (2, "b", 1), (3, "a", 0), (4, "c", 1)])
    assert set(found) == {3, 4}
    assert (found[3].at, found[3].reason) == ("id", "the same id as line 1")
    assert (found[4].at, found[4].value, found[4].reason) == ("seed", 1, "the same seed as line 2")


def test_item_identifiers_with_a_filter_are_the_filtered_identifiers() -> None:
    items: list[Any] = [
        {"id": 101, "name": "Rex", "kind": "dog", "owner": {"email": "ann@example.com"}},
        {"id": 102, "name": "Tom", "kind": "dog", "owner": {"email": "bob@example.com"}},
        "a scalar item",
    ]
    stated = Text.of("the dog Tom of bob@example.com").states
    for index in range(len(items)):
        every = item_identifiers(items, index)
        assert item_identifiers(items, index, stated) == [(at, v) for at, v in every if stated(v)]
    # "dog" is no identifier (both items hold it); Tom's name and owner's e-mail are
    assert item_identifiers(items, 1, stated) == [("/name", "Tom"), ("/owner/email", "bob@example.com")]
    assert item_identifiers(items, 0, stated) == []


def test_a_response_index_tells_booleans_from_numbers_however_often_it_sees_them() -> None:
    from decimal import Decimal

    for _ in range(2):  # the second time from the remembered facts of each scalar
        index = ResponseIndex.of([{"a": True, "b": 1.5, "c": "1,000", "d": 7, "e": "Sold Out"}])
        assert index.numbers == {Decimal("1.5"), Decimal("1000"), Decimal("7")}, "True is no number"
        assert index.booleans == {True} and "sold out" in index.strings
    assert ResponseIndex.of([{"a": 1}]).numbers == {Decimal(1)} and ResponseIndex.of([{"a": True}]).numbers == set()


def test_a_text_states_an_int_or_a_string_as_the_general_rule_does_asked_once_or_again() -> None:
    from decimal import Decimal

    from toolgrad.validity.statements import contains_phrase, normal_text, scalar_number

    text = Text.of("order 12 of -3 items, 1,000 units, 2.0 kg, 10000000000000000000 stars; status sold")
    # the rule: the value's number among the text's numbers, or a string as a phrase of the text
    for value in (12, -3, 1000, 2, 10000000000000000000, 0, 13, "12", " 1000 ", "2", "sold", "Sold", "old",
                  "2.0 kg", "kg", ""):
        number = scalar_number(value)
        rule = (number is not None and number in text.numbers) or (
            isinstance(value, str) and contains_phrase(text.normal, normal_text(value)))
        for _ in range(2):  # the second answer comes from what the text remembers
            assert text.states(value) is rule, f"{value!r}: stated {rule}"
    assert Decimal(2) in text.numbers and text.states(2) and not text.states(True, "")


def test_a_response_index_holds_ints_as_their_numbers_and_reads_subclasses_as_their_json_types() -> None:
    from decimal import Decimal

    class Name(str):
        pass

    index = ResponseIndex.of([{"n": 12, "none": None, "f": 2.50, "big": 10**19, "colour": Name("Red Fox"),
                               "more": [None, False, -4]}])
    assert index.numbers == {Decimal(12), Decimal("2.5"), Decimal(10**19), Decimal(-4)}
    assert index.booleans == {False} and index.lengths == {3} and "red fox" in index.strings
    held = {v.text: index.holds(v) for v in answer_values("'12.0' '-4' '2.5' 'red fox' '10000000000000000000' '13'")}
    assert held == {"12.0": True, "-4": True, "2.5": True, "red fox": True, "10000000000000000000": True,
                    "13": False}


def test_a_check_asks_whether_the_query_names_a_list_item_once_and_gets_names_item_s_answer() -> None:
    from toolgrad.validity.checks import _ItemNames

    same_pets = [dict(p) for p in PETS]  # equal lists, other objects: asked about separately
    for query in ("the pet called Fido", "the pet called Rex", "the pending one", "the 1st item"):
        names = _ItemNames(Text.of(query))
        for items in (PETS, same_pets, PETS):
            assert [names.names(items, i) for i in range(len(items))] == [
                names_item(Text.of(query), items, i) for i in range(len(items))], query


def test_the_first_unheld_value_is_the_first_one_a_response_index_does_not_hold() -> None:
    from toolgrad.validity.statements import first_unheld

    responses = [PETS, {"note": "Rex sleeps at 12 Main Street", "price": 7.5, "tags": ["a", "b", "c"],
                        "Name": "Ann Lee", "flag": True, "none": None, "big": 2**70}]
    statuses = [201, 200]
    index = ResponseIndex.of(responses, statuses)
    answers = ["'rex' 'Main Street' 7.50 3 201 'Ann Lee' 'ann lee' 'true'",  # each held, some only once normalised
               "'Ann Lee' 'Whiskers' 99", "'Street 12' 'rex'", "1180591620717411303424 'ANN  LEE' 'false'", ""]
    for answer in answers:
        values = answer_values(answer)
        expected = next((v for v in values if not index.holds(v)), None)
        assert first_unheld(responses, statuses, values) == expected, answer
