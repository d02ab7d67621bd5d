"""``toolgrad sim image|compose|up|down|status``: containers and running services (the CLI shell; prints).

The library modules (:mod:`simulator.containers.context`, :mod:`simulator.containers.images`,
:mod:`simulator.containers.compose`, :mod:`simulator.sandboxes.backends`) report events; this module
turns them into terminal output.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from simulator.containers.compose import (
    DEFAULT_PORT_BASE,
    ComposeMount,
    ComposePlan,
    compose_mount,
    render_compose,
    service_urls,
)
from simulator.containers.context import BuildEvent, envs_source, find_project_root, prepare_context
from simulator.containers.images import DEFAULT_BASE, build_args, build_image, pinned_reference
from simulator.errors import SimulatorError
from simulator.sandboxes.backends import services_status, start_services, stop_services
from simulator.sandboxes.backends.base import Hardening, ServiceEvent, default_image_tag

from .shell import console, escape, help_text, say, stdout_console, user_errors

sandbox_app = typer.Typer(help="Simulator images, compose files and running services.", no_args_is_help=True)
CONTEXT_DIR_NAME = "toolgrad-sim-context"
_HARDENING = Hardening()
_STATE_STYLE = {"healthy": "green", "unhealthy": "yellow", "unrecorded": "yellow"}


def _print_service_event(event: ServiceEvent) -> None:
    style = {"healthy": "green", "failed": "red", "stopped": "dim", "cleanup": "yellow"}.get(event.kind, "")
    label = f"[{style}]{event.kind}[/{style}]" if style else event.kind
    console.print(f"  {label} {escape(event.service)} ({event.backend}) {escape(event.detail)}", highlight=False)


def _build_printer(verbose: bool) -> Callable[[BuildEvent], None]:
    def show(event: BuildEvent) -> None:
        took = f" [dim]({event.seconds:.1f} s)[/dim]" if event.seconds is not None else ""
        if event.kind == "log":
            if verbose or event.message.startswith("Step "):
                console.print(
                    f"  {event.message}", style="dim", highlight=False, markup=False, soft_wrap=True
                )
        elif event.kind == "built":
            console.print(f"[green]built[/green] {escape(event.message)}{took}", highlight=False)
        else:
            console.print(f"{escape(event.message)}{took}", highlight=False)

    return show


@sandbox_app.command("image")
def image_command(
    base: Annotated[
        str,
        typer.Option(help="Base image (glibc Linux with python3 and venv).", envvar="TOOLGRAD_IMAGE_BASE"),
    ] = DEFAULT_BASE,
    tag: Annotated[
        str | None, typer.Option(help=help_text("Image tag", default="toolgrad-sim:<version>"), envvar="TOOLGRAD_IMAGE")
    ] = None,
    project_dir: Annotated[
        Path | None, typer.Option(help=help_text("Source checkout", default="found from cwd"))
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Print every build log line.")] = False,
) -> None:
    """Build the simulator image from this checkout (wheels built on the host; no network in the build)."""
    with user_errors(SimulatorError):
        root = find_project_root(project_dir)
        with console.status("building the simulator image"):
            built = build_image(base=base, tag=tag, project_root=root, on_event=_build_printer(verbose))
    console.print(
        f"image {built.tag}: Python {built.python} on {built.base}, {built.seconds:.1f} s", highlight=False
    )


@sandbox_app.command("compose")
def compose_command(
    envs: Annotated[list[str], typer.Argument(help="Shipped environment names, environment folders or spec "
                                              "files (a folder is mounted read-only), one service each.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Compose file to write.")] = Path(
        "docker-compose.yml"
    ),
    port_base: Annotated[
        int, typer.Option(help="Service i is published on 127.0.0.1:PORT_BASE+i.")
    ] = DEFAULT_PORT_BASE,
    seed: Annotated[int, typer.Option(help="Seed of every service.", envvar="TOOLGRAD_SEED")] = 0,
    image: Annotated[
        str | None, typer.Option(help=help_text("Image tag", default="toolgrad-sim:<version>"), envvar="TOOLGRAD_IMAGE")
    ] = None,
    base: Annotated[
        str | None, typer.Option(help="BASE build arg of the build section.", envvar="TOOLGRAD_IMAGE_BASE")
    ] = None,
    build: Annotated[
        bool, typer.Option(help="Write a build section and its context next to the file.")
    ] = True,
    project_dir: Annotated[
        Path | None, typer.Option(help=help_text("Source checkout", default="found from cwd"))
    ] = None,
    mem_limit: Annotated[str, typer.Option(help="Memory limit of each service.")] = _HARDENING.mem_limit,
    pids_limit: Annotated[int, typer.Option(min=16, help="Process limit of each service.")] = _HARDENING.pids_limit,
    cpus: Annotated[float, typer.Option(min=0.1, help="CPUs of each service.")] = _HARDENING.cpus,
    tmpfs_size: Annotated[str, typer.Option(help="Size of each service's /tmp.")] = _HARDENING.tmpfs_size,
    pin: Annotated[bool, typer.Option(help="With --no-build: name the image by its ID when the engine "
                                      "holds it (a digest, not a tag that can move).")] = True,
    mcp: Annotated[
        bool, typer.Option("--mcp", help="Also serve each env over MCP (streamable HTTP, service <name>-mcp).")
    ] = False,
    mcp_port_base: Annotated[
        int | None, typer.Option(help=help_text("MCP service i on 127.0.0.1:MCP_PORT_BASE+i", default="PORT_BASE+100"))
    ] = None,
) -> None:
    """Write a docker-compose file serving ENVS from the simulator image (loopback ports only,
    no capabilities, no privilege gain, memory, process and CPU limits, a sized /tmp). A folder
    or spec file of yours is mounted read-only into its service."""
    from simulator.sandboxes.backends.mounts import image_environments  # the spec machinery: not at start-up

    with user_errors(SimulatorError):
        root = find_project_root(project_dir) if build else None
        # what the image holds by name: the one built from this checkout, or (--no-build) the kit's own
        image_names = image_environments(envs_source(root)) if root else image_environments()
        # an image of the user's own (--no-build --image X) may hold environments we don't know of:
        # a name that is no folder here is then left to the image, not refused
        mounts = _mounts(envs, image_names, output.parent, strict=build or image is None)
        context_rel: str | None = None
        args: dict[str, str] = {}
        if root is not None:
            context_rel, args = _prepare_build_section(root, output, base)
        reference = image or default_image_tag()
        if pin and not build:
            reference = pinned_reference(reference)
        plan = ComposePlan(
            envs=tuple(envs), image=reference, port_base=port_base, seed=seed,
            build_context=context_rel, build_args=tuple(args.items()), mcp=mcp, mcp_port_base=mcp_port_base,
            mounts=mounts,
            hardening=Hardening(mem_limit=mem_limit, pids_limit=pids_limit, cpus=cpus, tmpfs_size=tmpfs_size),
        )  # fmt: skip
        text = render_compose(plan)
        output.parent.mkdir(parents=True, exist_ok=True)
        # a finished file or the old one, never half of one (a kill mid-write)
        partial = output.with_name(f".{output.name}.{os.getpid()}.tmp")
        try:
            partial.write_text(text, encoding="utf-8")
            os.replace(partial, output)
        except BaseException as exc:
            partial.unlink(missing_ok=True)  # no stray temp file beside the compose file
            if isinstance(exc, OSError):
                raise SimulatorError(f"cannot write {output}: {exc.strerror or exc}") from exc
            raise
    console.print(f"wrote {escape(str(output))} (seed {seed})", highlight=False)
    for name, url in service_urls(plan).items():
        console.print(escape(f"  {name}: {url}"), highlight=False)
    console.print(escape(f"start with: docker compose -f {output} up -d"), highlight=False)


def _mounts(envs: list[str], image_names: set[str], compose_dir: Path, *,
            strict: bool = True) -> tuple[tuple[str, ComposeMount], ...]:
    """The folders to mount, by env: every env the image does not hold by name (an unknown name
    is an error naming what the image ships, unless not ``strict``: then it is left to the image)."""
    from simulator.sandboxes.backends.mounts import env_mount

    found = ((env, env_mount(env, image_names, strict=strict)) for env in envs)
    return tuple((env, compose_mount(mount, compose_dir)) for env, mount in found if mount is not None)


def _prepare_build_section(root: Path, output: Path, base: str | None) -> tuple[str, dict[str, str]]:
    """Write the build context next to ``output``; the context (relative to the compose file)
    and the build args."""
    context = output.parent.resolve() / CONTEXT_DIR_NAME
    with console.status(f"preparing the build context in {context}"):
        prepare_context(context, project_root=root, on_event=_build_printer(False))
    return f"./{CONTEXT_DIR_NAME}", build_args(base, context)


@sandbox_app.command("up")
def up_command(
    envs: Annotated[list[str], typer.Argument(help="Spec files, environment directories or shipped names.")],
    backend: Annotated[
        str, typer.Option(help="local (subprocesses) or docker (containers).", envvar="TOOLGRAD_SIM_BACKEND")
    ] = "local",
    seed: Annotated[int, typer.Option(help="Seed of every service.", envvar="TOOLGRAD_SEED")] = 0,
    port_base: Annotated[
        int | None, typer.Option(help=help_text("Service i on 127.0.0.1:PORT_BASE+i", default="free ports"))
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each service's health check.")] = 60.0,
    image: Annotated[
        str | None, typer.Option(help="Image for --backend docker.", envvar="TOOLGRAD_IMAGE")
    ] = None,
) -> None:
    """Start services that keep running after this command; `toolgrad sim down` stops them."""
    started = time.monotonic()
    with user_errors(SimulatorError):
        handles = start_services(
            envs, backend=backend, seed=seed, port_base=port_base, timeout=timeout, image=image,
            detach=True, on_event=_print_service_event,
        )  # fmt: skip
    console.print(
        f"{len(handles)} service(s) up in {time.monotonic() - started:.1f} s (seed {seed}):", highlight=False
    )
    for handle in handles:
        # stdout, one per line, so scripts can read `name url`
        typer.echo(f"{handle.name} {handle.base_url}")
        if handle.admin_token:  # a container's control API is closed: say how to open it
            say(f"  {handle.name}: X-Sim-Admin-Token {handle.admin_token}")


@sandbox_app.command("down")
def down_command() -> None:
    """Stop every service `toolgrad sim up` started, found by the ledger or, if it is lost, by label."""
    with user_errors(SimulatorError):
        stopped = stop_services(on_event=_print_service_event)
    console.print(f"{len(stopped)} service(s) stopped" if stopped else "nothing was running")


@sandbox_app.command("status")
def status_command(
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per service on stdout (no admin "
                                           "token), instead of the table.")] = False,
) -> None:
    """List the services that are up, and whether each answers its health check (exit 1 when any
    does not)."""
    with user_errors(SimulatorError):
        statuses = services_status()
    if json_out:
        for status in statuses:
            record = {k: v for k, v in status.handle.to_json().items() if k != "admin_token"}
            typer.echo(json.dumps({**record, "state": status.state, "detail": status.detail}, sort_keys=True))
    elif not statuses:
        console.print("nothing is running")
    else:
        table = Table("service", "backend", "url", "state", "detail", box=None, pad_edge=False)
        for status in statuses:
            style = _STATE_STYLE.get(status.state, "red")
            table.add_row(escape(status.handle.name), status.handle.backend, escape(status.handle.base_url),
                          f"[{style}]{status.state}[/{style}]", escape(status.detail))  # fmt: skip
        stdout_console().print(table)
    if any(status.state not in ("healthy",) for status in statuses):
        raise typer.Exit(1)
