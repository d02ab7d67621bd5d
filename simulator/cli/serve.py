"""``toolgrad sim serve``: one environment over HTTP, with its limits, credentials and control plane."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from simulator.errors import SimulatorError

from .shell import console, escape, help_text, say

if TYPE_CHECKING:  # the service and the server load when `sim serve` runs, not with every command
    from simulator.environments.environment import Environment
    from simulator.service.simulator import Simulator


class AuthMode(StrEnum):
    off = "off"
    enforce = "enforce"


def serve_command(
    env: Annotated[str, typer.Argument(help="Spec file, environment directory or shipped name.")],
    host: Annotated[str, typer.Option(envvar="TOOLGRAD_SIM_HOST", help="Address to listen on; beyond "
                                      "loopback the control API needs the admin token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="TOOLGRAD_SIM_PORT", min=0, max=65535,
                                      help="TCP port (0: any free port; the bound port is printed).")] = 8000,
    seed: Annotated[int | None, typer.Option(envvar="TOOLGRAD_SEED", help="Overrides the env's seed.")] = None,
    auth_mode: Annotated[AuthMode, typer.Option("--auth", envvar="TOOLGRAD_SIM_AUTH",
                                      help="off: credentials not checked; enforce: each operation's "
                                      "security requirement is checked against the configured credentials "
                                      "(401 otherwise).")] = AuthMode.off,
    credential: Annotated[list[str] | None, typer.Option(
        "--credential", help="NAME=VALUE: a value `--auth enforce` accepts for the security scheme NAME "
        "(repeatable; added to env.yaml's auth.credentials). Basic: NAME=user:password.")] = None,
    admin_token: Annotated[str | None, typer.Option(
        envvar="TOOLGRAD_SIM_ADMIN_TOKEN", help="Token for the /_sim control API (X-Sim-Admin-Token); "
        "required beyond loopback or under --auth enforce, generated and printed when not given.")] = None,
    allowed_host: Annotated[list[str] | None, typer.Option(
        "--allowed-host", envvar="TOOLGRAD_SIM_ALLOWED_HOSTS", help="Another Host name the control API answers for (loopback names and the "
        "bound address always are).")] = None,
    access_log: Annotated[bool, typer.Option("--access-log", envvar="TOOLGRAD_SIM_ACCESS_LOG",
                                             help="One line per request on stderr: session, method, "
                                             "path, status, ms.")] = False,
    max_sessions: Annotated[int | None, typer.Option(min=1, help=help_text("Sessions kept (LRU beyond)", default="10000"))] = None,
    max_snapshots: Annotated[int | None, typer.Option(min=1, help=help_text("Snapshots kept (LRU beyond)", default="10000"))] = None,
    state_budget: Annotated[int | None, typer.Option(min=1, help=help_text("Bytes of records and journals kept "
                 "across sessions and snapshots", default="64 MiB"))] = None,
    session_bytes: Annotated[int | None, typer.Option(min=1, help=help_text("Bytes of records one session may hold "
                 "(507 beyond)", default="8 MiB"))] = None,
    journal_limit: Annotated[int | None, typer.Option(min=0, help=help_text("Journal entries kept per session", default="100"))] = None,
    journal_body_limit: Annotated[int | None, typer.Option(min=0, help=help_text("Bytes kept of each body in the "
                 "journal", default="1024"))] = None,
) -> None:
    """Serve an environment over HTTP (uvicorn); the control API is under /_sim (see /_sim/docs)."""
    from simulator.environments.environment import load_environment
    from simulator.serving.control_access import ControlPolicy
    from simulator.serving.server import bind, serve  # uvicorn

    auth = auth_mode.value
    environment = load_environment(env, seed=seed)
    limits = dict(max_sessions=max_sessions, max_snapshots=max_snapshots, state_budget=state_budget,
                  session_bytes=session_bytes, journal=journal_limit, journal_body=journal_body_limit)
    simulator = _simulator(environment, auth, credential or [], limits)
    policy = ControlPolicy.for_server(bind_host=host, auth=auth, admin_token=admin_token,
                                      allowed_hosts=allowed_host or ())
    sock = bind(host, port)  # before announcing anything: a busy port is one error, exit 2
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    console.print(f"serving {escape(environment.name)} (seed {environment.seed}) on http://{shown_host}:{bound_port}"
                  f"  control API: /_sim/docs", highlight=False)
    if policy.closed:
        told = f"admin token (generated): {policy.admin_token}" if policy.token_generated else "admin token: as given"
        say(f"control API closed: send X-Sim-Admin-Token; {told}")
    serve(environment, host=host, sock=sock, simulator=simulator, policy=policy, access_log=access_log)


def _simulator(environment: Environment, auth: str, credential_flags: list[str],
               limit_flags: dict[str, int | None]) -> Simulator:
    """The simulator the flags ask for: credentials and limits from env.yaml, overridden by flags."""
    from simulator.service.auth import CredentialError, merge_credentials, parse_credential_flags
    from simulator.service.simulator import Simulator
    from simulator.state.sessions import Limits

    try:
        credentials = merge_credentials(environment.credentials, parse_credential_flags(credential_flags))
        if auth == "enforce" and not credentials:
            raise CredentialError("--auth enforce needs credentials to check: give --credential NAME=VALUE "
                                  "(NAME a security scheme of the spec) or auth.credentials in env.yaml")
        limits = Limits().with_values(**environment.limits).with_values(**limit_flags)
        return Simulator(environment, auth=auth, limits=limits, credentials=credentials)
    except CredentialError as exc:
        raise SimulatorError(str(exc)) from None
