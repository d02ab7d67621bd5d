"""``toolgrad sim ...``: check, serve and describe environments (the CLI shell; prints)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import orjson
import typer
import typer.main
from rich.table import Table
from typer.core import TyperGroup

from simulator.errors import SimulatorError

from .mcp import mcp_app
from .serve import serve_command
from .shell import escape, print_error, stdout_console, user_errors

# the container and sandbox-manager commands, defined in .sandbox; kept in step by tests/simulator/test_cli_shell.py
SANDBOX_COMMANDS = ("image", "compose", "up", "down", "status")


class _SimCommands(TyperGroup):
    """``toolgrad sim``'s commands; those of :mod:`.sandbox` are built when one is named or the
    commands are listed, not with every ``toolgrad`` command (their modules, YAML and the
    service backends among them, take tens of milliseconds to import)."""

    def list_commands(self, ctx: Any) -> list[str]:  # typer's own click types: Any, not the click package's
        return [*super().list_commands(ctx), *(name for name in SANDBOX_COMMANDS if name not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in SANDBOX_COMMANDS and cmd_name not in self.commands:
            from .sandbox import sandbox_app

            for name, command in typer.main.get_group(sandbox_app).commands.items():
                self.add_command(command, name)
        return super().get_command(ctx, cmd_name)


sim_app = typer.Typer(cls=_SimCommands, help="Serve OpenAPI specs as deterministic, stateful mock services.",
                      no_args_is_help=True)


def check_one(ref: str) -> dict[str, Any]:
    """Load one spec or environment and summarise it (raises SimulatorError when it cannot)."""
    # the spec machinery loads when a command needs it, not with every `toolgrad` command
    from simulator.environments.environment import load_environment
    from simulator.environments.resources import describe, infer_resources

    env = load_environment(ref)
    model = infer_resources(env.spec, env.overrides)
    kinds: dict[str, int] = {}
    for b in model.bindings.values():
        kinds[b.kind] = kinds.get(b.kind, 0) + 1
    return {
        "spec": ref,
        "ok": True,
        "env": env.name,
        "title": env.spec.title,
        "format": env.spec.source_format,
        "operations": len(env.spec.operations),
        "kinds": dict(sorted(kinds.items())),
        "resources": describe(model),
        "skipped": [{"operation": f"{s.method} {s.path}", "pointer": s.pointer, "reason": s.reason}
                    for s in env.spec.skipped],
        "notes": list(model.notes),
        "fingerprint": env.fingerprint(),
    }


@sim_app.command()
def check(
    specs: Annotated[list[str], typer.Argument(help="Spec files, environment directories or shipped names.")],
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per spec on stdout.")] = False,
) -> None:
    """Load each spec and summarise it: operations, resources, what was left out and why."""
    failed = 0
    for ref in specs:
        try:
            summary = check_one(ref)
        except SimulatorError as exc:
            failed += 1
            summary = {"spec": ref, "ok": False, "error": str(exc)}
        if json_out:
            sys.stdout.write(orjson.dumps(summary).decode() + "\n")
        elif not summary["ok"]:
            print_error(f"{ref}\n  {summary['error']}")
        else:
            _print_summary(ref, summary)
    raise typer.Exit(2 if failed else 0)


def _print_summary(ref: str, summary: dict[str, Any]) -> None:
    """One spec's summary on stdout (full width when piped); every piece of spec text escaped."""
    out = stdout_console()
    out.print(f"[green]✓[/green] {escape(ref)}: {escape(summary['title'])} ({summary['format']}), "
              f"{summary['operations']} operations, {len(summary['resources'])} resources, "
              f"{len(summary['skipped'])} left out", highlight=False)
    table = Table("resource", "collection", "id", "writable", "operations", box=None, pad_edge=False)
    for r in summary["resources"]:
        table.add_row(escape(r["name"]), escape(r["collection"]), escape(f"{r['id_field']} ({r['id_type']})"),
                      "yes" if r["writable"] else "no", escape(", ".join(r["operations"])))
    out.print(table, highlight=False)
    for s in summary["skipped"]:
        out.print(f"  [yellow]left out[/yellow] {escape(s['operation'])} at #{escape(s['pointer'])}: "
                  f"{escape(s['reason'])}", highlight=False)


sim_app.command("serve")(serve_command)


@sim_app.command()
def tools(
    spec: Annotated[str, typer.Argument(help="Spec file, environment directory or shipped name.")],
    qualify: Annotated[bool, typer.Option(
        "--qualify/--no-qualify", help="Name tools <env>__<operation>, as datasets, eval and MCP do.")] = True,
) -> None:
    """Print the OpenAI function-calling tool list for a spec (one function per operation), named as
    datasets and `toolgrad eval` name them (petstore__updatePet)."""
    from simulator.environments.environment import load_environment
    from simulator.tools import qualified_tools, tools_for

    with user_errors(SimulatorError):
        environment = load_environment(spec)
    if qualify:
        listing = [{"type": "function", "function": {**tool.openai()["function"], "name": name}}
                   for name, (_, tool) in qualified_tools({environment.name: environment.spec}).items()]
    else:
        listing = [t.openai() for t in tools_for(environment.spec)]
    sys.stdout.write(orjson.dumps(listing, option=orjson.OPT_INDENT_2).decode() + "\n")


sim_app.add_typer(mcp_app)  # `toolgrad sim mcp` (the SDK is imported only when it runs)
