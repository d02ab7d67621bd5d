"""`toolgrad demo`, the quick start's one command, as a user runs it: the console script, from an
empty folder, no key and no network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TOOLGRAD = Path(sys.executable).with_name("toolgrad")
SAMPLES = 3


@pytest.mark.timeout(300)
def test_demo_writes_a_dataset_and_a_certificate_at_100_percent(tmp_path: Path) -> None:
    if not TOOLGRAD.exists():
        pytest.skip(f"no toolgrad console script next to {sys.executable} (install the kit: pip install -e .)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOOLGRAD_", "OPENAI_"))}
    done = subprocess.run([str(TOOLGRAD), "demo", "--n", str(SAMPLES), "-o", "out"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=280, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    data, cert_path = tmp_path / "out" / "data.jsonl", tmp_path / "out" / "certificate.json"
    assert f"dataset:     {Path('out') / 'data.jsonl'}" in done.stdout
    assert len(data.read_text().splitlines()) == SAMPLES
    certificate = json.loads(cert_path.read_text())
    assert certificate["pass_rate"] == 1.0 and certificate["sample_count"] == SAMPLES
    assert certificate["passed"] == SAMPLES
    assert "Traceback" not in done.stderr
