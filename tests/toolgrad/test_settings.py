"""Settings validate the same with their validators built at first use (``defer_build``)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from toolgrad.settings import (
    EXPORT_ENV,
    GENERATE_ENV,
    ExportSettings,
    GenerateSettings,
    ToolgradError,
    from_environment,
)


def test_a_bad_variable_is_named_with_its_flag() -> None:
    # bad input: TOOLGRAD_N=-1, below the minimum of 0
    with pytest.raises(ToolgradError) as caught:
        from_environment(GenerateSettings, GENERATE_ENV, {"TOOLGRAD_N": "-1"})
    assert str(caught.value) == "--n (from TOOLGRAD_N='-1'): Input should be greater than or equal to 0"


def test_values_from_variables_and_flags() -> None:
    settings = from_environment(GenerateSettings, GENERATE_ENV, {"TOOLGRAD_ENV": "crm,petstore", "TOOLGRAD_N": "3"},
                                seed=7)
    assert (settings.envs, settings.n, settings.seed, settings.workers) == (["crm", "petstore"], 3, 7, 1)
    export = from_environment(ExportSettings, EXPORT_ENV, {}, input="a.jsonl", format="bfcl", output="out")
    assert (export.format, export.negatives, export.distractors) == ("bfcl", 0.2, 4)


def test_unknown_fields_and_assignment_are_refused() -> None:
    with pytest.raises(ValidationError):
        GenerateSettings(colour="red")  # type: ignore[call-arg]  # bad input: no such setting
    settings = GenerateSettings()
    with pytest.raises(ValidationError):
        settings.n = 5  # type: ignore[misc]  # bad input: settings are frozen


@pytest.mark.parametrize("model", [GenerateSettings, ExportSettings])
def test_the_schema_is_the_one_built_at_once(model: type[BaseModel]) -> None:
    eager: type[BaseModel] = type(model.__name__, (model,), {"model_config": ConfigDict(extra="forbid", frozen=True, defer_build=False)})
    assert model.model_json_schema() == eager.model_json_schema()
