"""The distribution as a user installs it: the wheel built from this checkout, installed into a
fresh virtual environment, runs the main job (`toolgrad demo`) from an empty folder outside the
checkout, with the shipped environments found inside the installed package.

No network: the wheel is built without build isolation (the dev extra installs setuptools), and
the fresh venv sees the test venv's dependencies through a ``.pth`` line, never this checkout (a
.pth file's own .pth files are not processed, so the editable install is not picked up).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.name for p in (ROOT / "envs").iterdir() if (p / "env.yaml").is_file())


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)
    assert result.returncode == 0, f"{result.args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out, ROOT, cwd=out)
    (built,) = out.glob("toolgrad_kit-*.whl")
    return built


def test_the_wheel_carries_every_shipped_environment(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for env in SHIPPED:
        assert f"simulator/_envs/{env}/env.yaml" in names, f"{env} is not in {wheel.name}"
    assert not any(n.startswith(("tests/", "envs/")) for n in names), "only the packages travel"


def test_installed_wheel_runs_the_demo_from_an_empty_folder(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                    cwd=tmp_path).stdout.strip())
    # the dependencies come from the test venv; the kit itself only from the wheel
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel, cwd=tmp_path)
    work = tmp_path / "somewhere-else"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOOLGRAD_", "PYTHON", "VIRTUAL_ENV"))}
    where = run(python, "-c", "import simulator, toolgrad; print(simulator.__file__); print(toolgrad.__file__)",
                cwd=work, env=env).stdout.split()
    assert all(Path(p).is_relative_to(site) for p in where), f"the kit was imported from {where}, not the wheel"

    demo = run(venv / "bin" / "toolgrad", "demo", "--n", "8", "-o", "out", cwd=work, env=env)
    certificate = orjson.loads((work / "out" / "certificate.json").read_bytes())
    assert certificate["pass_rate"] == 1.0 and certificate["sample_count"] == 8, demo.stdout
    first = orjson.loads((work / "out" / "data.jsonl").read_bytes().splitlines()[0])
    # schema 4: a line fingerprints the environments it calls; the run's are in the generator block
    assert sorted(first["provenance"]["generator"]["environments"]) == SHIPPED, "the demo runs on every shipped environment"
    assert set(first["provenance"]["environments"]) <= set(SHIPPED)
