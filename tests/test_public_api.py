"""The public API (httpx's habit): each package's ``__init__`` names what a program needs, and
nothing else is promised. Adding or removing a name is a deliberate change to this list."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PUBLIC = {
    "simulator": [
        "Environment", "HTTPSandbox", "InProcessSandbox", "Sandbox", "SimRequest", "SimResponse", "Simulator",
        "SimulatorError", "Spec", "SpecError", "UnknownEnvironmentError", "build_app", "load_environment",
        "load_environments", "load_spec", "running_services", "serve", "shipped_environments",
    ],
    "toolgrad": [
        "ChatModel", "ExportSettings", "GenerateSettings", "LLMPolicy", "ModelError", "OfflinePolicy", "OpenAIChat",
        "Policy", "RunIncomplete", "RunSummary", "Sample", "Toolbox", "ToolgradError", "export_dataset",
        "generate_dataset", "read_samples", "split_file",
    ],
    "benchmarks": [
        "BenchmarkError", "Certificate", "CompareSettings", "EvalSettings", "SandboxProvider", "build_report",
        "certificate_bytes", "certify_file", "evaluate_dataset", "read_dataset", "run_comparison", "write_run",
    ],
}


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_all_is_the_curated_list_and_every_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(["__version__", *PUBLIC[package]]), "the public API changed: update PUBLIC"
    for name in PUBLIC[package]:
        value = getattr(module, name)
        assert getattr(value, "__module__", "").startswith(package + "."), (name, value)
    assert sorted(dir(module)) == sorted(module.__all__)
    assert not hasattr(module, "nope"), "an unknown name is an AttributeError"


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_importing_a_package_loads_nothing_else(package: str) -> None:
    """The names load on first use: ``import simulator`` must stay cheap (the CLI starts fast)."""
    code = (f"import sys; import {package}; "
            f"print(sorted(m for m in sys.modules if m.startswith('{package}.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout


def test_a_program_can_generate_and_certify_through_the_public_api(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import benchmarks
    import toolgrad

    data = tmp_path / "data.jsonl"
    summary = toolgrad.generate_dataset(toolgrad.GenerateSettings(envs=["petstore"], n=2, output=str(data)))
    assert summary.samples == 2
    certificate = benchmarks.certify_file(data)
    assert certificate.pass_rate == 1.0 and certificate.sample_count == 2
