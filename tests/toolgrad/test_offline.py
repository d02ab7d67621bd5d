"""The offline policy on every shipped environment: samples come out, chains are multi-step,
every step replays on a fresh session, and queries never name an API."""

from __future__ import annotations

from collections.abc import Callable
from statistics import mean

import pytest

from simulator.environments.environment import shipped_environments
from toolgrad.loop.policy import named_apis
from toolgrad.loop.sample import GeneratorConfig, api_names, run_sample
from toolgrad.policies.offline.catalog import ArgSpec, tool_info
from toolgrad.policies.offline.policy import OfflinePolicy
from toolgrad.policies.offline.text import as_words, operation_phrase
from toolgrad.policies.offline.values import PAGE_SIZES, page_size, plausible
from toolgrad.records import Sample
from toolgrad.toolbox import Toolbox

MIN_MEAN_CALLS = 3.0
SHIPPED = shipped_environments()
Replay = Callable[[Sample], list[str]]


@pytest.mark.parametrize("env", SHIPPED)
def test_every_shipped_environment_gives_replayable_samples(
        env: str, offline_samples: dict[str, list[Sample]], replay: Replay) -> None:
    samples = offline_samples[env]
    assert samples, f"{env}: the offline policy produced no sample"
    for sample in samples:
        assert sample.chains and all(chain.steps for chain in sample.chains)
        assert all(200 <= step.status < 300 for step in sample.steps())
        assert replay(sample) == []


def test_chains_are_multi_step_on_average(offline_samples: dict[str, list[Sample]]) -> None:
    per_env = {env: mean(len(s.steps()) for s in samples) for env, samples in offline_samples.items() if samples}
    overall = mean(len(s.steps()) for samples in offline_samples.values() for s in samples)
    assert overall >= MIN_MEAN_CALLS, f"mean calls per sample {overall:.2f}; per env {per_env}"


def test_earlier_outputs_feed_later_inputs(offline_samples: dict[str, list[Sample]]) -> None:
    # the point of the policy: some argument of some step comes from an earlier response
    fed = {env: sum(len(step.sources) for s in samples for step in s.steps()) for env, samples in offline_samples.items()}
    assert fed["petstore"] > 0, fed
    assert sum(1 for count in fed.values() if count) >= len(fed) // 2, fed


@pytest.mark.parametrize("env", SHIPPED)
def test_queries_never_name_an_api(env: str, offline_samples: dict[str, list[Sample]]) -> None:
    box = Toolbox.in_process([env])
    names = api_names(box)
    for sample in offline_samples[env]:
        assert named_apis(sample.query, names) == []
        for step in sample.steps():
            assert step.tool not in sample.query
        assert sample.answer.strip()


def test_the_policy_is_deterministic() -> None:
    box = Toolbox.in_process(["petstore"])
    config = GeneratorConfig(iterations=4)
    first = run_sample(box, OfflinePolicy(box), 11, config)
    second = run_sample(box, OfflinePolicy(box), 11, config)
    assert first.trace == second.trace
    assert first.workflow.query == second.workflow.query


def test_proposals_use_batch_tools_only() -> None:
    box = Toolbox.in_process(["petstore", "museum"])
    outcome = run_sample(box, OfflinePolicy(box), 5, GeneratorConfig(iterations=3, batch_size=8))
    for it in outcome.trace.iterations:
        assert len(it.batch) == 8
        for proposal in it.proposals:
            assert 1 <= len(proposal.tools) <= 3
            assert set(proposal.tools) <= set(it.batch)
            assert proposal.instruction


def test_words_and_phrases() -> None:
    assert as_words("petId") == "pet ID"
    assert as_words("feed_key") == "feed key"
    box = Toolbox.in_process(["petstore"])
    op = box.environments["petstore"].spec.operation("findPetsByStatus")
    assert operation_phrase(op, "list", None) == "find Pets by status"


def test_a_list_that_takes_a_page_size_asks_for_a_small_page(offline_samples: dict[str, list[Sample]]) -> None:
    """crm's list operations take ``limit`` (1 to 200, default 20): the policy asks for 2 to 4
    records, the simulator returns that many, and the query states the value it chose."""
    paged = [(sample, step) for sample in offline_samples["crm"] for step in sample.steps() if "limit" in step.arguments]
    assert paged, "no crm sample of seeds 0..5 lists with a page size"
    for sample, step in paged:
        assert step.arguments["limit"] in PAGE_SIZES, step.arguments
        assert len(step.response["data"]) == step.arguments["limit"], step.operation_id
        assert f"limit {step.arguments['limit']}" in sample.query, sample.query


@pytest.mark.parametrize(("schema", "admitted"), [
    ({"type": "integer", "minimum": 1, "maximum": 200}, set(PAGE_SIZES)),
    ({"type": "integer", "maximum": 2}, {2}),
    ({"type": "integer", "minimum": 10}, None),  # no small page is allowed: the argument stays out
    ({"type": "string"}, None),  # not a count
])
def test_page_size_stays_within_the_schema(schema: dict, admitted: set[int] | None) -> None:
    arg = ArgSpec("limit", "query", False, schema, "limit", False)
    sizes = {page_size(arg, ("seed", n)) for n in range(30)}
    assert sizes == ({None} if admitted is None else admitted), schema


def test_a_name_the_policy_makes_up_is_a_label_for_a_thing_and_a_persons_for_a_person() -> None:
    """The policy sent a dashboard or a feed a person's name (a made-up argument was steered by
    its own name, ``name``): now by the record it is a field of, as the simulator's records are."""
    from faker.providers.person.en_US import Provider

    box = Toolbox.in_process(["adafruit", "crm"])

    def name_arg(tool: str) -> ArgSpec:
        return next(a for a in tool_info(box, tool).args if a.name == "name")

    expected = {"adafruit__createDashboard": "label_name", "adafruit__createFeed": "label_name",
                "crm__contactsAdd": "name", "crm__companiesAdd": "company_name"}
    assert {tool: name_arg(tool).value_name for tool in expected} == expected
    made = [plausible(name_arg("adafruit__createDashboard"), ("seed", i)) for i in range(10)]
    assert not [m for m in made if m.split()[0] in Provider.first_names], made
