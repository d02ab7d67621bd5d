"""``toolgrad certify``, ``eval``, ``eval-calls`` and ``report``: the benchmarks' CLI shell.

Only this module prints. Errors a user can act on (a bad dataset line, an unknown environment,
an unreachable model server) print one message and exit 2; a certificate below 100% (any sample
failing any check) exits 1.
Each flag has a ``TOOLGRAD_*`` environment variable; the API key comes only from the environment.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from benchmarks.certify.errors import BenchmarkError  # not .replay: the tree needs no dataset reader
from benchmarks.certify.sandboxes import BACKENDS
from simulator.canonical import pretty_json
from simulator.cli.shell import console, escape, fail, stdout_console, user_errors
from simulator.errors import EXIT_CODES, SimulatorError
from toolgrad.backends.base import ChatModel
from toolgrad.dataset.files import write_lines_atomic, write_text_atomic
from toolgrad.settings import ToolgradError

err = console  # stderr, silenced by --quiet
_USER_ERRORS = (BenchmarkError, SimulatorError, ToolgradError)

_BACKEND_HELP = f"Where sandboxes run: {', '.join(BACKENDS)}."
CertifyBackendOpt = Annotated[str, typer.Option("--backend", envvar="TOOLGRAD_CERTIFY_BACKEND", help=_BACKEND_HELP)]
EvalBackendOpt = Annotated[str, typer.Option("--backend", envvar="TOOLGRAD_EVAL_BACKEND", help=_BACKEND_HELP)]
EnvOpt = Annotated[list[str] | None, typer.Option(
    "--env", help="Where to find an environment the dataset names: NAME=REF (a directory or spec file), "
    "or REF alone (named by its env.yaml). Shipped environments need none.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
ExecutorOpt = Annotated[str, typer.Option("--executor", envvar="TOOLGRAD_EXECUTOR", help="Where the workers run: "
                                          "local (this machine) or ray (a Ray cluster; needs the ray extra).")]
RayAddressOpt = Annotated[str | None, typer.Option("--ray-address", envvar="TOOLGRAD_RAY_ADDRESS", help="A running "
                                                   "Ray cluster's address (default: a local Ray).")]


def _workers_opt(variable: str, what: str) -> Any:
    return typer.Option("--workers", "-w", envvar=variable, min=1, show_default="the core count",
                        help=f"Processes to {what} in (1: in this process; same bytes for any number).")


def _placement(workers: int | None, executor: str, ray_address: str | None) -> dict[str, Any]:
    """``--workers`` (the core count when not given), ``--executor``, ``--ray-address``, checked."""
    from toolgrad.executors import check_placement, workers_or_all_cores

    chosen = workers_or_all_cores(workers)
    check_placement(chosen, executor, ray_address)
    return {"workers": chosen, "executor": executor, "ray_address": ray_address}


def register(app: typer.Typer) -> None:
    """Add the benchmarks' commands to the root ``toolgrad`` app."""
    app.command("certify", epilog=EXIT_CODES)(certify_command)
    app.command("eval", epilog=EXIT_CODES)(eval_command)
    app.command("eval-calls", epilog=EXIT_CODES)(eval_calls_command)
    app.command("report")(report_command)


def _env_refs(values: list[str] | None) -> dict[str, str]:
    refs: dict[str, str] = {}
    for value in values or []:
        if "=" in value:
            name, ref = value.split("=", 1)
        else:
            # only here: a driver whose workers build the sandboxes never loads an environment
            from simulator.environments.environment import load_environment

            ref = value
            name = load_environment(ref).name
        refs[name.strip()] = ref.strip()
    return refs


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=True)


# --- certify -------------------------------------------------------------------------------------


_CERTIFY_HELP = (
    "Re-execute every chain on fresh sandboxes, check that every sample is valid, and write a certificate."
    "\n\n"
    "Checks, each reported per sample: replay (same responses and state), solvable (every argument value "
    "stated in the query or taken from an earlier response), grounded (every value the answer states is in "
    "a response), coherent (no unnamed mixing of list items; every step needed), unique (no repeated id or "
    "seed), and with --judge, a model's verdict that the chain and answer resolve the query (recorded in "
    "--cache, replayable with --replay-only)."
    "\n\n"
    "Exit status: 0 when every sample passes every check (100%); 1 when any sample fails a check; 2 on an "
    "error (an unreadable dataset or line, an unknown environment, a judge cache miss)."
)


def certify_command(
    data: Annotated[Path, typer.Argument(help="The dataset (JSONL, one sample per line).")],
    backend: CertifyBackendOpt = "inprocess",
    env: EnvOpt = None,
    workers: Annotated[int | None, _workers_opt("TOOLGRAD_CERTIFY_WORKERS", "replay samples")] = None,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    judge: Annotated[str | None, typer.Option("--judge", envvar="TOOLGRAD_CERTIFY_JUDGE",
                                              help="A model that judges whether each sample's chain and answer "
                                              "resolve its query (the paper's pass-rate check).")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", envvar="TOOLGRAD_CERTIFY_BASE_URL",
                                                 help="The judge's OpenAI-compatible endpoint.")] = None,
    cache: Annotated[Path | None, typer.Option("--cache", envvar="TOOLGRAD_CERTIFY_CACHE",
                                               help="The judge's record/replay cache directory "
                                               "(default: <data>.judge-cache beside the dataset).")] = None,
    replay_only: Annotated[bool, typer.Option("--replay-only/--no-replay-only", envvar="TOOLGRAD_CERTIFY_REPLAY_ONLY",
                                              help="Never call the judge: answers from its cache only.")] = False,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", envvar="TOOLGRAD_CERTIFY_RESUME",
                                         help="Continue a run that was killed, from the journal it left beside "
                                         "the certificate (<certificate>.partial; only your own: a journal "
                                         "is trusted as it is).")] = False,
    json_out: JsonOpt = False,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Where to write the certificate "
                                                "(default: <data>.certificate.json beside the dataset).")] = None,
) -> None:
    from toolgrad.executors import in_process, start_fork_server

    with user_errors(*_USER_ERRORS), contextlib.ExitStack() as stack:
        placement = _placement(workers, executor, ray_address)
        if executor == "local" and not in_process(placement["workers"], executor):
            start_fork_server(certify_worker_modules(backend))  # imports there while this process reads
        chat = _judge_chat(judge, base_url, cache or _sidecar(data, ".judge-cache"), replay_only) if judge else None
        if chat is not None:
            stack.callback(chat.close)
        # imported once the fork server is starting: its imports and these run side by side
        from benchmarks.certify.certificate import (
            Tally,
            certificate_text,
            iter_certify,
            judge_dataset,
            with_unique,
        )
        from benchmarks.certify.journal import VerdictJournal, journal_key, journal_path
        from benchmarks.certify.replay import read_dataset, recorded_env_refs
        from benchmarks.certify.sandboxes import SandboxProvider

        dataset = read_dataset(data)
        target = output or _sidecar(data, ".certificate.json")
        refs = recorded_env_refs(dataset) | _env_refs(env)
        journal = VerdictJournal(journal_path(target), journal_key(dataset.sha256, refs))
        stack.callback(journal.close)
        with SandboxProvider(backend, refs) as provider, _progress() as progress:
            done = _resumable(journal, provider) if resume else _discarded(journal)
            journal.open(keep=done)
            task = progress.add_task("certifying", total=len(dataset.lines), completed=done)
            tally = Tally()
            checked = iter_certify(dataset, provider, done=journal.resumed(done), skip=done, **placement)
            for item, result in with_unique(checked):
                journal.add(item, result)
                tally.add(item, result)
                progress.advance(task)
            judged = None
            if chat is not None:
                task = progress.add_task(f"judging with {judge}", total=len(dataset.lines))
                judged = judge_dataset(dataset, chat, lambda _: progress.advance(task))
        journal.close()
        certificate, tally, samples = _streamed_certificate(journal, tally, dataset, judged, judge or "")
        write_lines_atomic(target, (text.encode() for text in certificate_text(certificate, samples())))
        journal.remove()
    if json_out:  # the file just written, a line at a time
        with open(target, encoding="utf-8") as written:
            sys.stdout.writelines(written)
    else:
        _print_certificate(certificate, tally, target)
    raise typer.Exit(0 if certificate.ok else 1)


def _resumable(journal: Any, provider: Any) -> int:
    """How many samples the journal of an earlier run holds, when they were checked against the
    environments installed now (else 0: the run starts over, saying why)."""
    from simulator.canonical import canonical_json

    count, prints = journal.earlier()
    if not count:
        err.print(f"nothing to resume: no journal of this run at {escape(str(journal.path))}; checking every sample",
                  highlight=False)
        return 0
    for text in sorted(prints):
        fingerprint = json.loads(text)
        seed = fingerprint.get("seed")
        try:
            installed = canonical_json(provider.fingerprint((str(fingerprint.get("env")), seed)))
        except SimulatorError:
            installed = b""
        if installed != text:
            err.print(f"not resumed: environment {escape(str(fingerprint.get('env')))} differs from the one the "
                      "journal's samples were checked against; checking every sample", highlight=False)
            return 0
    err.print(f"resumed: {count} sample(s) already checked (journal {escape(str(journal.path))})", highlight=False)
    return int(count)


def _discarded(journal: Any) -> int:
    """0, after saying that a journal left by an earlier run (killed, or of other data) is replaced."""
    if journal.path.exists():
        err.print(f"replacing the journal an earlier run left at {escape(str(journal.path))} "
                  "(--resume continues a killed run instead)", highlight=False)
    return 0


def _streamed_certificate(journal: Any, tally: Any, dataset: Any, judged: Any, judge: str) -> tuple[Any, Any, Any]:
    """(the certificate without its samples, its tally, a function giving its samples again, read
    from the journal, so that no sample is held). With a judge, its results are added to each
    verdict and the tally counted again."""
    from benchmarks.certify.certificate import Tally, with_judge

    if tally.count != len(dataset.lines):
        raise BenchmarkError(f"{journal.path}: {tally.count} of the {len(dataset.lines)} samples were checked")
    if judged is not None:
        tally = Tally()
        for item in journal.items(len(dataset.lines)):
            tally.add(item, with_judge(item.verdict, judged))
    certificate = tally.certificate(dataset.sha256, judge, dataset.traces_sha256, [])

    def samples() -> Any:
        verdicts = (item.verdict for item in journal.items(certificate.sample_count))
        return verdicts if judged is None else (with_judge(verdict, judged) for verdict in verdicts)

    return certificate, tally, samples


certify_command.__doc__ = _CERTIFY_HELP


def certify_worker_modules(backend: str) -> tuple[str, ...]:
    """What a certify worker imports (:func:`toolgrad.executors.worker_modules` of its
    :class:`~benchmarks.certify.certificate.CertifyJob`), named without importing that here."""
    from benchmarks.certify.sandboxes import sandbox_modules

    return ("benchmarks.certify.certificate", *sandbox_modules(backend))


def _sidecar(data: Path, suffix: str) -> Path:
    return data.with_name(data.name.removesuffix(".jsonl") + suffix)


def _judge_chat(model: str, base_url: str | None, cache: Path, replay_only: bool) -> Any:
    from benchmarks.evaluate.runner import endpoint_api_key
    from toolgrad.backends.cache import ResponseCache
    from toolgrad.backends.openai import OpenAIChat

    if not base_url and not replay_only:
        fail("--judge needs --base-url (or TOOLGRAD_CERTIFY_BASE_URL), or --replay-only with a recorded --cache")
    api_key = endpoint_api_key()
    return OpenAIChat(model=model, base_url=base_url or "http://127.0.0.1:1/v1", api_key=api_key,
                      cache=ResponseCache(cache), replay_only=replay_only)


def _print_certificate(certificate: Any, tally: Any, target: Path) -> None:
    out = stdout_console()
    seed_text = f"{tally.seeds[0]}..{tally.seeds[1]}" if tally.seeds else "-"
    colour = "green" if certificate.ok else "red"
    per_check = ", ".join(f"{name} {passed}" for name, passed in certificate.checks.items())
    out.print(f"[{colour}]{certificate.passed}/{certificate.sample_count} samples certified "
              f"({certificate.pass_rate:.1%})[/{colour}], {certificate.step_count} steps, seeds {seed_text}")
    out.print(f"passed per check: {escape(per_check)}", highlight=False, soft_wrap=True)
    for s in tally.failed:
        problems = "; ".join(describe_check(name, s, result) for name, result in s.checks.items() if not result.ok)
        out.print(f"  line {s.line} (seed {s.seed}, sample {s.id[:12]}): {problems}",
                  highlight=False, markup=False, soft_wrap=True)
    more = certificate.sample_count - certificate.passed - len(tally.failed)
    if more > 0:
        out.print(f"  ... and {more} more (see the certificate)")
    if certificate.traces != "inline":
        out.print(f"traces: {escape(certificate.traces)}", highlight=False)
    out.print(f"certificate: {escape(str(target))}  (dataset sha256 {certificate.dataset_sha256[:16]}...)")


def describe_check(name: str, sample: Any, result: Any) -> str:
    """One failed check in a line: where (chain, step, place), the value and why."""
    if name == "replay":
        return "replay: " + describe_divergence(sample.verdict, sample.first_divergence)
    where = "" if result.chain is None else f" at chain {result.chain} step {result.step}"
    place = f", {result.at}" if result.at and name != "judge" else ""
    value = "" if result.value is None or name == "judge" else f" = {_short(json.dumps(result.value, ensure_ascii=False))}"
    return f"{name}{where}{place}{value}: {result.reason}"


def describe_divergence(verdict: str, d: dict[str, Any] | None) -> str:
    """One line: the verdict, where (chain, step, field and pointer), what was expected and got."""
    if not d:
        return verdict
    where = "" if d.get("chain") is None else f" at chain {d['chain']} step {d['step']}"
    field = str(d.get("field", ""))
    pointer = d.get("pointer") or ""
    expected, got = _short(d.get("expected")), _short(d.get("got"))
    if field.startswith("environment."):
        said = str(d.get("got"))  # what to pass to find it: never cut
    elif field.startswith("fingerprint."):
        said = f"recorded {expected}, installed {got}"
    elif field.startswith("sources."):
        said = f"the source holds {expected}, the argument is {got}"
    elif field == "id":
        said = f"the content hashes to {expected}, the record says {got}"
    else:
        said = f"recorded {expected}, the replay gave {got}"
    return f"{verdict}{where}, {field}{pointer}: {said}"


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- eval ----------------------------------------------------------------------------------------


def _chat_model(model: str, base_url: str) -> ChatModel:
    """A client for ``model`` at ``base_url``, once the endpoint has answered a one-token request
    (exit 2 within seconds, with the cause, when it cannot)."""
    from benchmarks.evaluate.runner import endpoint_api_key
    from toolgrad.backends.base import EndpointError
    from toolgrad.backends.openai import OpenAIChat
    from toolgrad.backends.preflight import check_endpoint

    api_key = endpoint_api_key()
    try:
        check_endpoint(base_url, model, api_key=api_key)
    except EndpointError as exc:
        fail(f"the model endpoint is not usable: {exc}")
    chat: ChatModel = OpenAIChat(model=model, base_url=base_url, api_key=api_key)
    return chat


def _endpoint_failures(events: list[Any]) -> None:
    """Exit 1 when the endpoint failed on any trial (after its retries): their zeros in the report
    measure the server, not the model. The report is written first."""
    failed = [e for e in events if e.run.endpoint_error]
    if failed:
        first = failed[0]
        fail(f"the model endpoint failed on {len(failed)} of {len(events)} trial(s); they score 0 in the "
             f"report (first: line {first.line}, trial {first.trial}: {first.run.error})", code=1)


# Over 60 lines for its signature: one typer option per flag, each with its help; the body is short.
def eval_command(
    data: Annotated[Path, typer.Argument(help="The dataset (JSONL, one sample per line).")],
    model: Annotated[str, typer.Option("--model", envvar="TOOLGRAD_EVAL_MODEL", help="The model under test.")],
    base_url: Annotated[str, typer.Option("--base-url", envvar="TOOLGRAD_EVAL_BASE_URL",
                                          help="Its OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1.")],
    k: Annotated[int, typer.Option("--k", envvar="TOOLGRAD_EVAL_K", min=1, help="Trials per sample (pass^k).")] = 1,
    max_steps: Annotated[int, typer.Option("--max-steps", envvar="TOOLGRAD_EVAL_MAX_STEPS", min=1,
                                           help="Tool calls allowed per trial.")] = 10,
    temperature: Annotated[float, typer.Option("--temperature", envvar="TOOLGRAD_EVAL_TEMPERATURE")] = 0.0,
    max_tokens: Annotated[int, typer.Option("--max-tokens", envvar="TOOLGRAD_EVAL_MAX_TOKENS", min=1,
                                            help="Tokens allowed per model reply.")] = 1024,
    judge: Annotated[str | None, typer.Option("--judge", envvar="TOOLGRAD_EVAL_JUDGE",
                                              help="A model to score Quality of Response (0-100).")] = None,
    judge_base_url: Annotated[str | None, typer.Option("--judge-base-url", envvar="TOOLGRAD_EVAL_JUDGE_BASE_URL",
                                                       help="The judge's endpoint (default: --base-url).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N samples.")] = None,
    backend: EvalBackendOpt = "inprocess",
    env: EnvOpt = None,
    workers: Annotated[int | None, _workers_opt("TOOLGRAD_EVAL_WORKERS", "run samples")] = None,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    json_out: JsonOpt = False,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="A directory for report.json, "
                                                "report.md, report.html and traces.jsonl.")] = None,
) -> None:
    """Run a model as a tool-calling agent on every sample and score it against the reference."""
    from dataclasses import replace

    from benchmarks.certify.certificate import read_dataset
    from benchmarks.certify.replay import recorded_env_refs
    from benchmarks.certify.sandboxes import SandboxProvider
    from benchmarks.evaluate.report import (
        build_report,
        render_markdown,
        report_bytes,
        trace_record,
        write_run,
    )
    from benchmarks.evaluate.runner import EvalSettings, ModelEndpoint, evaluate_dataset
    from toolgrad.executors import in_process

    settings = EvalSettings(k=k, max_steps=max_steps, temperature=temperature, max_tokens=max_tokens)
    with user_errors(*_USER_ERRORS):
        placement = _placement(workers, executor, ray_address)
        dataset = read_dataset(data)
        if limit is not None:
            dataset = replace(dataset, limit=limit)
        chat = _chat_model(model, base_url)
        judge_chat = _chat_model(judge, judge_base_url or base_url) if judge else None
        here = in_process(placement["workers"], executor)  # else each worker connects its own
        model_arg = chat if here else ModelEndpoint(model, base_url)
        judge_arg = judge_chat if here or not judge else ModelEndpoint(judge, judge_base_url or base_url)
        events = []
        with contextlib.ExitStack() as stack:
            for opened in (chat, judge_chat):
                close = getattr(opened, "close", None)
                if close is not None:
                    stack.callback(close)
            provider = stack.enter_context(SandboxProvider(backend, recorded_env_refs(dataset) | _env_refs(env)))
            progress = stack.enter_context(_progress())
            task = progress.add_task(f"evaluating {model}", total=len(dataset.lines) * k)
            for event in evaluate_dataset(dataset, model_arg, provider, settings, judge=judge_arg, **placement):
                events.append(event)
                progress.advance(task)
            environments = provider.installed_fingerprints()
        report = build_report(dataset, events, model=model, base_url=base_url, settings=settings,
                              backend=backend, judge=judge or "", environments=environments)
    if output is not None:
        paths = write_run(output, report, (trace_record(e) for e in events))
    if json_out:
        sys.stdout.write(report_bytes(report).decode())
        _endpoint_failures(events)
        return
    stdout_console().print(render_markdown([report]), highlight=False, markup=False)
    if output is not None:
        err.print(f"report: {escape(str(paths['report.html']))} (json, md and traces.jsonl beside it)", highlight=False)
    _endpoint_failures(events)


# --- eval-calls ----------------------------------------------------------------------------------


def eval_calls_command(
    data: Annotated[Path, typer.Argument(help="A `toolgrad export --format calls` file, or a dataset.")],
    model: Annotated[str, typer.Option("--model", envvar="TOOLGRAD_EVAL_MODEL", help="The model under test.")],
    base_url: Annotated[str, typer.Option("--base-url", envvar="TOOLGRAD_EVAL_BASE_URL",
                                          help="Its OpenAI-compatible endpoint.")],
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N items.")] = None,
    json_out: JsonOpt = False,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write the result (JSON) here.")] = None,
) -> None:
    """Single-turn call-list evaluation (BFCL-style AST match of the calls the model lists)."""
    from benchmarks.evaluate.call_lists import load_call_items, run_call_eval

    with user_errors(*_USER_ERRORS):
        items = load_call_items(data)[:limit]
        chat = _chat_model(model, base_url)
        with contextlib.ExitStack() as stack, _progress() as progress:
            close = getattr(chat, "close", None)
            if close is not None:
                stack.callback(close)
            task = progress.add_task(f"asking {model}", total=len(items))
            result = run_call_eval(items, chat, model_name=model, base_url=base_url,
                                   on_item=lambda _: progress.advance(task))
    text = pretty_json(result)
    if output is not None:
        write_text_atomic(output, text)
    if json_out:
        sys.stdout.write(text)
        return
    m = result["metrics"]
    stdout_console().print(f"{escape(model)}: exact match {m['exact_match']:.3f}, call-name recall {m['name_recall']:.3f}, "
                    f"calls matched {m['call_match']:.3f} over {m['items']} items")


# --- report --------------------------------------------------------------------------------------


def report_command(
    runs: Annotated[list[Path], typer.Argument(help="report.json files (or run directories) from `toolgrad eval -o`.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The HTML file to write.")] = Path("report.html"),
    markdown: Annotated[Path | None, typer.Option("--markdown", help="Also write the Markdown here.")] = None,
) -> None:
    """Compare evaluation runs (models) in one static HTML page with charts."""
    from benchmarks.evaluate.report import load_report, render_html, render_markdown

    with user_errors(*_USER_ERRORS):
        reports = [load_report(p / "report.json" if p.is_dir() else p) for p in runs]
        write_text_atomic(output, render_html(reports))
        if markdown is not None:
            write_text_atomic(markdown, render_markdown(reports))
    err.print(escape(f"wrote {output}" + (f" and {markdown}" if markdown else "")), highlight=False)
