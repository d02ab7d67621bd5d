"""Sandboxes for recorded samples: one per (environment, seed), built in process, as local
processes or as containers, and checked against each sample's recorded fingerprints.

A :class:`SandboxProvider` is what certify, evaluate and the perf scripts replay on; its
:class:`ProviderPlan` is the picklable recipe a worker process builds the same sandboxes from.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simulator.canonical import canonical_json
from simulator.errors import SimulatorError, UnknownEnvironmentError

from .errors import BenchmarkError

if TYPE_CHECKING:  # the simulator is imported where sandboxes are built: a driver whose workers replay needs none
    from simulator.environments.environment import Environment
    from simulator.sandboxes.protocol import Sandbox
    from toolgrad.toolbox import Toolbox

    from .replay import Divergence

BACKENDS = ("inprocess", "local", "docker")
EnvKey = tuple[str, int | None]  # (environment name, seed)


@dataclass(frozen=True, slots=True)
class ProviderPlan:
    """What a worker process needs to build the same sandboxes: picklable, no live objects."""

    backend: str
    env_refs: tuple[tuple[str, str], ...]
    urls: tuple[tuple[EnvKey, str], ...] = ()
    tokens: tuple[tuple[EnvKey, str], ...] = ()  # control API admin tokens of services that need one

    @property
    def modules(self) -> tuple[str, ...]:
        """The modules the sandboxes are built from (imported lazily by :class:`SandboxProvider`)."""
        return sandbox_modules(self.backend)


def sandbox_modules(backend: str) -> tuple[str, ...]:
    """The modules a provider imports to build ``backend``'s sandboxes (:attr:`ProviderPlan.modules`)."""
    sandbox = "simulator.sandboxes.inprocess" if backend == "inprocess" else "simulator.sandboxes.http"
    return ("simulator.environments.environment", sandbox, "toolgrad.toolbox")


class SandboxProvider:
    """Toolboxes for samples, built from each sample's recorded environment fingerprints.

    One sandbox per (environment, seed), shared by every sample that names it (each sample
    runs in its own fresh session). ``inprocess`` builds simulators in this process; ``local``
    and ``docker`` start services through :func:`simulator.sandboxes.backends.running_services` (stopped
    by :meth:`close`), or reach the ``urls`` a parent process started.
    """

    def __init__(self, backend: str = "inprocess", env_refs: dict[str, str] | None = None,
                 urls: dict[EnvKey, str] | None = None) -> None:
        if backend not in BACKENDS:
            raise BenchmarkError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        self.backend = backend
        self.env_refs = dict(env_refs or {})
        self.urls: dict[EnvKey, str] = dict(urls or {})
        self.tokens: dict[EnvKey, str] = {}
        self._environments: dict[EnvKey, Environment] = {}
        self._sandboxes: dict[EnvKey, Sandbox] = {}
        self._toolboxes: dict[tuple[EnvKey, ...], Toolbox] = {}
        self._stack = contextlib.ExitStack()

    @classmethod
    def from_plan(cls, plan: ProviderPlan) -> SandboxProvider:
        provider = cls(plan.backend, dict(plan.env_refs), dict(plan.urls))
        provider.tokens = dict(plan.tokens)
        return provider

    def plan(self) -> ProviderPlan:
        def by_key(item: tuple[EnvKey, str]) -> tuple[str, int]:
            return item[0][0], -1 if item[0][1] is None else item[0][1]

        return ProviderPlan(self.backend, tuple(sorted(self.env_refs.items())),
                            tuple(sorted(self.urls.items(), key=by_key)), tuple(sorted(self.tokens.items(), key=by_key)))

    def __enter__(self) -> SandboxProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for sandbox in self._sandboxes.values():
            sandbox.close()
        self._sandboxes.clear()
        self._toolboxes.clear()
        self._stack.close()

    def environment(self, key: EnvKey) -> Environment:
        """The installed environment for (name, seed); SimulatorError when there is none."""
        from simulator.environments.environment import is_plain_name, load_environment

        found = self._environments.get(key)
        if found is None:
            name, seed = key
            if name not in self.env_refs and not is_plain_name(name):
                # a dataset is untrusted input: its names are looked up, never opened as paths
                raise UnknownEnvironmentError(
                    f"the dataset names environment {name!r}, which is not a plain name; "
                    f"pass --env NAME=PATH to say where it is")
            found = self._environments[key] = load_environment(self.env_refs.get(name, name), seed=seed)
        return found

    def prepare(self, keys: Iterable[EnvKey]) -> None:
        """Start (for the HTTP backends) every (environment, seed) not running yet, in one go per seed."""
        missing = sorted({k for k in keys if k not in self._sandboxes},
                         key=lambda k: (k[0], -1 if k[1] is None else k[1]))
        if not missing:
            return
        if self.backend == "inprocess":  # the HTTP client and the backends are not imported for it
            from simulator.sandboxes.inprocess import InProcessSandbox

            for key in missing:
                self._sandboxes[key] = InProcessSandbox(self.environment(key))
            return
        from simulator.sandboxes.backends import running_services
        from simulator.sandboxes.http import HTTPSandbox

        to_start: dict[int | None, list[str]] = {}
        for key in missing:
            if key in self.urls:
                self._sandboxes[key] = HTTPSandbox(self.urls[key], key[0], admin_token=self.tokens.get(key))
            else:
                self.environment(key)  # fail early (per sample) when it is not installed
                to_start.setdefault(key[1], []).append(key[0])
        for seed, names in to_start.items():
            refs = [self.env_refs.get(name, name) for name in names]
            handles = self._stack.enter_context(running_services(refs, backend=self.backend, seed=seed))
            for name, handle in zip(names, handles, strict=True):
                self.urls[(name, seed)] = handle.base_url
                if handle.admin_token:
                    self.tokens[(name, seed)] = handle.admin_token
                self._sandboxes[(name, seed)] = HTTPSandbox(handle.base_url, name, admin_token=handle.admin_token)

    def toolbox_for(self, fingerprints: dict[str, dict[str, Any]]) -> Toolbox | Divergence:
        """A toolbox over the sample's environments, or the first reason it cannot be trusted:
        an environment that is not installed, or a fingerprint that differs from the installed one."""
        from simulator.environments.environment import is_plain_name
        from toolgrad.toolbox import Toolbox

        from .replay import Divergence, compare_fingerprints  # the dataset reader: not for the command tree

        keys: list[EnvKey] = []
        for name in sorted(fingerprints):
            seed = fingerprints[name].get("seed")
            key = (name, seed if isinstance(seed, int) and not isinstance(seed, bool) else None)
            try:
                self.environment(key)
            except SimulatorError as exc:
                said = str(exc) if not is_plain_name(name) else (
                    f"none named {name!r} here: pass --env {name}=PATH (the environment's folder or spec), "
                    "or put the folder it is in in TOOLGRAD_ENVS_DIR")
                return Divergence(None, None, f"environment.{name}", "an installed environment", said)
            keys.append(key)
        self.prepare(keys)
        for name, key in zip(sorted(fingerprints), keys, strict=True):
            divergence = compare_fingerprints(name, fingerprints[name], self._sandboxes[key].fingerprint())
            if divergence is not None:
                return divergence
        memo = tuple(keys)
        toolbox = self._toolboxes.get(memo)
        if toolbox is None:
            toolbox = self._toolboxes[memo] = Toolbox(
                {k[0]: self._sandboxes[k] for k in keys}, {k[0]: self.environment(k) for k in keys})
        return toolbox

    def fingerprint(self, key: EnvKey) -> dict[str, Any]:
        """The fingerprint a sample replayed on (name, seed) is checked against; SimulatorError
        when the environment is not installed. In process, from the environment (no simulator is
        built: a driver whose workers replay needs none); otherwise its sandbox's, started if
        need be."""
        env = self.environment(key)
        if self.backend == "inprocess" and key not in self._sandboxes:
            from simulator.sandboxes.inprocess import InProcessSandbox

            return InProcessSandbox.fingerprint_of(env)
        self.prepare([key])
        return self._sandboxes[key].fingerprint()

    def installed_fingerprints(self) -> list[dict[str, Any]]:
        """The fingerprints of every sandbox used so far, sorted by environment and seed."""
        prints = [sandbox.fingerprint() for sandbox in self._sandboxes.values()]
        return sorted(prints, key=canonical_json)
