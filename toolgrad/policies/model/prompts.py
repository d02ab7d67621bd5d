"""Prompts and output schemas of the four ToolGrad modules, as pure functions.

Modelled on the paper's Proposer, Executor, Selector and Updater, and kept short: tools are
rendered as compact signatures, one line each (``name(arg*: type, ...): description``), every
tool of the mini-batch shown (descriptions shortened or dropped to fit a character budget), and
every tool output shown to the model is truncated. Each structured module comes with the JSON Schema its
reply must satisfy; enums in the schema (tool names, candidate numbers) let a server that
compiles the schema into a grammar rule out invalid answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from simulator.canonical import canonical_json
from toolgrad.loop.policy import Workflow
from toolgrad.records import Proposal, Step

Messages = list[dict[str, Any]]


# -- rendering ------------------------------------------------------------------------------------


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 3)] + "..."


def compact_json(value: Any, limit: int) -> str:
    try:
        text = canonical_json(value).decode()
    except TypeError:
        text = str(value)
    return clip(text, limit)


def _first_sentence(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    cut = text.find(". ")
    return clip(text[: cut + 1] if 0 < cut < limit else text, limit)


def _type_of(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "any"
    if "enum" in schema and isinstance(schema["enum"], list):
        values = [v if isinstance(v, str) else compact_json(v, 20) for v in schema["enum"][:5]]
        return "|".join(values) + ("|..." if len(schema["enum"]) > 5 else "")
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = "|".join(str(k) for k in kind if k != "null") or "null"
    if kind == "array":
        return f"{_type_of(schema.get('items'))}[]"
    if kind:
        return str(kind)
    for combinator in ("anyOf", "oneOf"):
        if isinstance(schema.get(combinator), list):
            return "|".join(_type_of(s) for s in schema[combinator][:3])
    return "object" if "properties" in schema else "any"


_SHORT_TYPES = {"string": "str", "integer": "int", "boolean": "bool", "number": "num", "object": "obj"}


def _short_type(text: str) -> str:
    return "|".join(_SHORT_TYPES.get(part, part) for part in text.split("|"))


def tool_line(spec: dict[str, Any], description_chars: int = 80, max_args: int = 8) -> str:
    """``- name(arg*: type, ...): description`` for an OpenAI tool spec (``*``: required; types
    abbreviated: str, int, num, bool, obj). Required arguments are always listed; optional ones
    while fewer than ``max_args`` are shown."""
    function = spec.get("function", {})
    parameters = function.get("parameters") or {}
    properties = parameters.get("properties") or {}
    required = set(parameters.get("required") or [])
    names = sorted(properties, key=lambda n: (n not in required, list(properties).index(n)))
    shown = [n for i, n in enumerate(names) if n in required or i < max_args]
    args = [f"{n}{'*' if n in required else ''}: {_short_type(_type_of(properties[n]))}" for n in shown]
    if len(shown) < len(names):
        args.append(f"+{len(names) - len(shown)} optional")
    description = _first_sentence(function.get("description") or "", description_chars) if description_chars else ""
    return f"- {function.get('name')}({', '.join(args)})" + (f": {description}" if description else "")


# how a tool list is shortened to fit its budget: shorter descriptions, then none, then fewer
# optional arguments; a tool is never left out (the proposer sees the whole mini-batch)
_DETAIL_LEVELS = ((80, 8), (40, 8), (0, 8), (0, 4), (0, 0))


def render_tools(specs: Sequence[dict[str, Any]], budget: int) -> tuple[str, list[str]]:
    """One line per tool, every tool, in order, as detailed as ``budget`` characters allow
    (the least detailed level when none fits); returns the text and the names shown."""
    names = [str(spec.get("function", {}).get("name")) for spec in specs]
    text = ""
    for description_chars, max_args in _DETAIL_LEVELS:
        text = "\n".join(tool_line(spec, description_chars, max_args) for spec in specs)
        if len(text) <= budget:
            break
    return text, names


def step_line(label: str, step: Step, output_chars: int) -> str:
    return (f"{label} {step.tool}({compact_json(step.arguments, 120)}) -> {step.status} "
            f"{compact_json(step.response, output_chars)}")


def render_workflow(workflow: Workflow, budget: int) -> str:
    """The workflow's calls with their real (truncated) outputs, and its query and answer."""
    steps = workflow.steps()
    if not steps:
        return "(no calls yet)"
    per_step = max(60, budget // len(steps) - 60)
    lines = [step_line(f"[chain {ci} step {si}]", step, per_step) for ci, si, step in steps]
    if workflow.query:
        lines.append(f"User request so far: {clip(workflow.query, 300)}")
    if workflow.answer:
        lines.append(f"Answer so far: {clip(workflow.answer, 300)}")
    return "\n".join(lines)


# the bounds of int32/int64 formats: they say nothing the format does not, and cost tokens
_FORMAT_BOUNDS = frozenset({-(2**31), 2**31 - 1, -(2**63), 2**63 - 1})


def compact_tool_spec(spec: dict[str, Any], description_chars: int = 160) -> dict[str, Any]:
    """``spec`` with every description (the tool's and its parameters') clipped and integer
    bounds that only restate an int32/int64 format dropped, to save context."""

    def trim(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: clip(v, description_chars) if k == "description" and isinstance(v, str) else trim(v)
                    for k, v in node.items()
                    if not (k in ("minimum", "maximum") and isinstance(v, int) and v in _FORMAT_BOUNDS)}
        if isinstance(node, list):
            return [trim(v) for v in node]
        return node

    result: dict[str, Any] = trim(spec)
    return result


# -- the Proposer ---------------------------------------------------------------------------------

PROPOSER_SYSTEM = (
    "You plan tasks for an assistant that uses web APIs. A task is one instruction that needs "
    "1 to 3 of the listed tools. Prefer tasks that build on the real results of earlier calls. "
    "Reply with JSON only."
)


def proposer_messages(tools_text: str, workflow_text: str, k: int) -> Messages:
    user = (f"Tools:\n{tools_text}\n\nCalls made so far:\n{workflow_text}\n\n"
            f"Write {k} different tasks. For each, give the instruction and the names of the tools it needs.\n"
            'JSON: {"proposals": [{"instruction": "...", "tools": ["tool name"]}]}')
    return [{"role": "system", "content": PROPOSER_SYSTEM}, {"role": "user", "content": user}]


def proposer_schema(tool_names: Sequence[str], k: int, max_tools: int = 3) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"proposals": {
            "type": "array", "minItems": 1, "maxItems": max(1, k),
            "items": {
                "type": "object",
                "properties": {
                    "instruction": {"type": "string", "minLength": 1},
                    "tools": {"type": "array", "minItems": 1, "maxItems": max_tools,
                              "items": {"type": "string", "enum": list(tool_names)}},
                },
                "required": ["instruction", "tools"],
            },
        }},
        "required": ["proposals"],
    }


# -- the Executor ---------------------------------------------------------------------------------

EXECUTOR_SYSTEM = (
    "You carry out a task by calling the given tools. Call a tool now; use real values from "
    "earlier results as arguments, and to learn an id you do not know, first call a tool that "
    "lists or finds items. When the task is done, reply with a one-sentence summary and no tool call."
)


def executor_messages(proposal: Proposal, workflow_text: str) -> Messages:
    user = f"Task: {proposal.instruction}"
    if workflow_text != "(no calls yet)":
        user += f"\n\nEarlier results:\n{workflow_text}"
    return [{"role": "system", "content": EXECUTOR_SYSTEM}, {"role": "user", "content": user}]


# -- the Selector ---------------------------------------------------------------------------------

SELECTOR_SYSTEM = (
    "You choose which executed task best grows the workflow into one realistic, useful user "
    "request. Reply with JSON only."
)


def selector_messages(workflow_text: str, candidates: Sequence[tuple[int, str, list[Step]]],
                      chains: int, output_chars: int) -> Messages:
    blocks = []
    for index, instruction, steps in candidates:
        calls = "\n".join(step_line("  call", s, output_chars) for s in steps)
        blocks.append(f"[{index}] {clip(instruction, 200)}\n{calls}")
    actions = '"new" starts a new chain'
    if chains:
        actions = f'"extend" continues chain "chain" (0 to {chains - 1}), ' + actions
    user = (f"Workflow so far:\n{workflow_text}\n\nCandidates:\n" + "\n".join(blocks) + "\n\n"
            f'Set "choice" to the best candidate\'s number and "action": {actions}, '
            '"reject" if none helps. Give a short "rationale".\n'
            'JSON: {"choice": 0, "action": "new", "chain": null, "rationale": "..."}')
    return [{"role": "system", "content": SELECTOR_SYSTEM}, {"role": "user", "content": user}]


def selector_schema(candidate_indices: Sequence[int], chains: int) -> dict[str, Any]:
    actions = (["extend"] if chains else []) + ["new", "reject"]
    return {
        "type": "object",
        "properties": {
            "choice": {"enum": [*candidate_indices, None]},
            "action": {"enum": actions},
            "chain": {"enum": [*range(chains), None]},
            "rationale": {"type": "string"},
        },
        "required": ["choice", "action", "chain", "rationale"],
    }


# -- the Updater ----------------------------------------------------------------------------------

UPDATER_SYSTEM = (
    "You write the request a user made and the final answer to it, given the API calls made for "
    "it and their real results. The request must sound like a person and must not name APIs, "
    "tools, functions or endpoints. It must state, quoted exactly, every value a call sends that "
    "the user has to supply (one that no earlier result gave), and name any record it takes from "
    "an earlier list by a value that identifies it (its name, title or id), never by its position. "
    "The answer must state only real values from the results, and something from every call that "
    "changes nothing. Reply with JSON only."
)


def updater_messages(workflow_text: str, previous_query: str, previous_answer: str, rationale: str) -> Messages:
    parts = [f"Calls and results:\n{workflow_text}"]
    if previous_query:
        parts.append(f"Previous request: {clip(previous_query, 300)}\nPrevious answer: {clip(previous_answer, 300)}")
    if rationale:
        parts.append(f"Why the last calls were added: {clip(rationale, 300)}")
    parts.append("Write the one user request that all these calls serve, and its final answer.\n"
                 'JSON: {"query": "...", "answer": "..."}')
    return [{"role": "system", "content": UPDATER_SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


UPDATER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"query": {"type": "string", "minLength": 1}, "answer": {"type": "string", "minLength": 1}},
    "required": ["query", "answer"],
}


def rewrite_request(problem: str) -> str:
    return (f"That will not do: {problem}. Rewrite the request as a person would say it, in plain "
            "words, without naming any API or tool, stating every value the user must supply and "
            "naming records by what identifies them; state in the answer only values from the results. "
            'JSON: {"query": "...", "answer": "..."}')
