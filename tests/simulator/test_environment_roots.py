"""Where environments are found by name: the shipped ones (inside the installed package) plus
every folder in ``$TOOLGRAD_ENVS_DIR``, with a name defined twice refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from simulator.environments.environment import (
    ENVS_DIR_VARIABLE,
    resolve_path,
    shipped_environments,
    shipped_root,
)
from simulator.errors import UnknownEnvironmentError

PETSTORE = shipped_root() / "petstore"


def make_env(root: Path, name: str) -> Path:
    folder = root / name
    shutil.copytree(PETSTORE, folder)
    return folder


def test_envs_dir_adds_to_the_shipped_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    mine, theirs = make_env(first, "my-api"), make_env(second, "their-api")
    monkeypatch.setenv(ENVS_DIR_VARIABLE, f"{first}:{second}")
    names = shipped_environments()
    assert {"my-api", "their-api", "petstore", "tictactoe"} <= set(names), names
    assert resolve_path("my-api") == mine.resolve() and resolve_path("their-api") == theirs.resolve()
    assert resolve_path("petstore") == PETSTORE.resolve()


def test_a_name_defined_twice_is_refused_with_both_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad input: a user folder holding another environment named like a shipped one (petstore)."""
    clash = make_env(tmp_path, "petstore")
    (clash / "env.yaml").write_text((clash / "env.yaml").read_text() + "\nfixtures: 6\n")
    monkeypatch.setenv(ENVS_DIR_VARIABLE, str(tmp_path))
    with pytest.raises(UnknownEnvironmentError) as error:
        resolve_path("tictactoe")
    assert str(clash) in str(error.value) and str(PETSTORE) in str(error.value), error.value


def test_an_unset_or_missing_envs_dir_leaves_the_shipped_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENVS_DIR_VARIABLE, raising=False)
    shipped = shipped_environments()
    monkeypatch.setenv(ENVS_DIR_VARIABLE, str(tmp_path / "does-not-exist"))
    assert shipped_environments() == shipped and "petstore" in shipped


def test_two_specs_with_one_name_are_refused_naming_both(tmp_path: Path) -> None:
    """Bad input: two different specs with one info.title (two versions of the Petstore), passed together."""
    from simulator.environments.environment import load_environments

    first, second = tmp_path / "a" / "openapi.yaml", tmp_path / "b" / "openapi.yaml"
    text = (PETSTORE / "openapi.yaml").read_text()
    for spec, version in ((first, "1.0.0"), (second, "2.0.0")):
        spec.parent.mkdir()
        spec.write_text(text.replace("  version: ", f"  version: {version}-was-", 1))
    assert first.read_text() != second.read_text()
    with pytest.raises(UnknownEnvironmentError) as error:
        load_environments([first, second])
    assert str(first) in str(error.value) and str(second) in str(error.value), error.value
    assert "info.title" in str(error.value)
    assert list(load_environments([first, first])) == ["swagger-petstore-openapi-3-0"], "one spec twice is one"


def test_a_bare_spec_is_named_after_its_title_and_a_folder_after_itself(tmp_path: Path) -> None:
    from simulator.environments.environment import bare_spec_name, load_environment, load_environments

    tictactoe = shipped_root() / "tictactoe" / "openapi.yaml"  # info.title: Tic Tac Toe
    spec = tmp_path / "openapi.yaml"
    shutil.copy(tictactoe, spec)
    folder = make_env(tmp_path, "my-api")
    (folder / "env.yaml").write_text("seed: 0\n")  # no name: the folder's
    assert list(load_environments([spec, folder])) == ["tic-tac-toe", "my-api"]
    assert load_environment(shipped_root() / "petstore").name == "petstore", "a shipped env keeps its folder's name"
    # no title: the loader titles the spec with its stem, which is kept as it is
    untitled = tmp_path / "My_Spec.yaml"
    untitled.write_text(tictactoe.read_text().replace("  title: Tic Tac Toe\n", "", 1))
    assert "title:" not in untitled.read_text().split("paths:")[0]
    assert load_environment(untitled).name == "My_Spec"
    assert bare_spec_name("Ärzte-API (v2)", "x") == "arzte-api-v2"
    assert bare_spec_name("日本語", "stem") == "stem", "nothing of the title left: the stem"
    assert bare_spec_name("a" * 100, "x") == "a" * 64


def test_the_same_environment_found_twice_is_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulator image copies the shipped environments to a folder of its own and names it in
    TOOLGRAD_ENVS_DIR: identical files are the same environment, not a clash."""
    copy = make_env(tmp_path, "petstore")
    monkeypatch.setenv(ENVS_DIR_VARIABLE, str(tmp_path))
    assert resolve_path("petstore") == copy.resolve(), "the first root found wins"
    (copy / "env.yaml").write_text((copy / "env.yaml").read_text() + "\\nfixtures: 6\\n")
    with pytest.raises(UnknownEnvironmentError, match="two environments are named 'petstore'"):
        resolve_path("petstore")
