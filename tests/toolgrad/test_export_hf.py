"""``export --format hf``: a dataset repository that ``datasets.load_dataset`` reads as is, with
nested messages and tools, train and test splits and a dataset card."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml

from toolgrad.agent_prompt import AGENT_SYSTEM_PROMPT
from toolgrad.dataset.lines import read_samples
from toolgrad.dataset.runner import generate_dataset
from toolgrad.exports.openai import export_dataset
from toolgrad.exports.split import split_file
from toolgrad.settings import ExportSettings, GenerateSettings, ToolgradError


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hf")
    data = root / "data.jsonl"
    generate_dataset(GenerateSettings(envs=["petstore", "museum"], n=20, seed=0, output=str(data)))
    split_file(data, root / "split", 0.25)
    return root / "split"


@pytest.fixture(scope="module")
def exported(split_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hf-out") / "repo"
    export_dataset(ExportSettings(input=str(split_dir), format="hf", output=str(out), distractors=2))
    return out


def card(path: Path) -> dict:
    text = (path / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_datasets_loads_the_repository(split_dir: Path, exported: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset(str(exported), cache_dir=str(tmp_path / "cache"))  # no stale cache
    assert set(loaded) == {"train", "test"}
    for name in ("train", "test"):
        samples = list(read_samples(split_dir / f"{name}.jsonl"))
        part = loaded[name]
        assert len(part) == len(samples)
        for row, sample in zip(part, samples, strict=True):
            assert row["id"] == sample.id and row["query"] == sample.query
            messages = row["messages"]
            assert messages[0] == {"role": "system", "content": AGENT_SYSTEM_PROMPT}
            assert messages[1] == {"role": "user", "content": sample.query}
            assert messages[-1] == {"role": "assistant", "content": sample.answer}
            calls = [m["tool_calls"][0]["function"] for m in messages if m.get("tool_calls")]
            assert calls == [{"name": s.tool, "arguments": s.arguments} for s in sample.steps()]
            results = [orjson.loads(m["content"]) for m in messages if m["role"] == "tool"]
            assert results == [{"status": s.status, "body": s.response} for s in sample.steps()]
            names = {t["function"]["name"] for t in row["tools"]}
            assert {s.tool for s in sample.steps()} <= names
            assert len(names) == len(set(sample.candidate_tools)) + 2


def test_the_card(split_dir: Path, exported: Path) -> None:
    meta = card(exported)
    assert meta["license"] == ["apache-2.0", "mit"]  # petstore, museum
    assert {s["split"] for s in meta["configs"][0]["data_files"]} == {"train", "test"}
    info = meta["toolgrad"]
    assert set(info["source_environments"]) == {"petstore", "museum"}
    assert info["source_environments"]["petstore"]["licence"] == "Apache-2.0"
    assert sorted(info["generator"]["environments"]) == ["museum", "petstore"]
    assert set(info["datasets_sha256"]) == {"train", "test"}
    assert {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]} == {
        "train": len(list(read_samples(split_dir / "train.jsonl"))),
        "test": len(list(read_samples(split_dir / "test.jsonl")))}


def test_certificate_hash_in_the_card(split_dir: Path, tmp_path: Path) -> None:
    from benchmarks.certify.certificate import certificate_bytes, certify_file

    data = split_dir / "train.jsonl"
    copy = tmp_path / "train.jsonl"
    copy.write_bytes(data.read_bytes())
    (tmp_path / "train.certificate.json").write_bytes(certificate_bytes(certify_file(copy)))
    export_dataset(ExportSettings(input=str(copy), format="hf", output=str(tmp_path / "repo")))
    certificate = card(tmp_path / "repo")["toolgrad"]["certificate"]
    assert certificate["pass_rate"] == 1.0 and len(certificate["sha256"]) == 64
    assert sorted(p.name for p in (tmp_path / "repo" / "data").iterdir()) == ["train.jsonl"]


def test_export_is_deterministic(split_dir: Path, exported: Path, tmp_path: Path) -> None:
    export_dataset(ExportSettings(input=str(split_dir), format="hf", output=str(tmp_path / "again"), distractors=2))
    for rel in ("README.md", "data/train.jsonl", "data/test.jsonl"):
        assert (tmp_path / "again" / rel).read_bytes() == (exported / rel).read_bytes()


def test_a_directory_that_is_not_a_split(tmp_path: Path) -> None:
    with pytest.raises(ToolgradError, match="not a split directory"):
        export_dataset(ExportSettings(input=str(tmp_path), format="hf", output=str(tmp_path / "out")))
