"""The offline policy's query and answer over a workflow's chains.

What a caller may rely on: the query passes :func:`toolgrad.validity.checks.check_solvable` by
construction. Each step is an imperative clause (its operation's phrase) followed by what a
user must tell for that call to be made:

* every argument value that is neither exempt (:func:`toolgrad.validity.checks.exemption`: a
  credential, a value the schema fixes, null) nor taken from an earlier result is *stated*,
  quoted as it is sent ("with status 'sold' and quantity 2");
* a value an argument that takes earlier outputs (an id, a key, a reference to another record)
  took from an earlier result is *referred to by what identifies its record* among the other
  items of the list it came from ("the pet ID of the pet with name 'doggie' from the previous
  result"), never by list position; when nothing identifies that record (no value that no
  other item shares), the value itself is stated.

The answer cites key fields of every response (:func:`toolgrad.policies.offline.text.finding`), so every
step is needed and every value the answer states is in a response.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from simulator.canonical import pointer_tokens
from toolgrad.json_values import leaves
from toolgrad.loop.policy import Workflow
from toolgrad.records import ArgumentSource, Chain, Step
from toolgrad.validity.checks import exemption, item_identifiers, lists_on_path, source_of
from toolgrad.validity.tool_terms import TermsOf, ToolTerms

from .catalog import ToolInfo
from .text import as_words, ask_for, finding, join_words, norm, noun_of, say, sequence

InfoOf = Callable[[str], "ToolInfo | None"]
# what a record is best named by, most telling first
_NAMING_KEYS = ("name", "title", "username", "email", "key", "slug", "label", "code", "id", "uuid")


# (id(step), chain, step) -> (the step, its clause, its finding): what a sample's updates worded already
Worded = dict[tuple[int, int, int], tuple[Step, str, str]]


def query_and_answer(workflow: Workflow, info: InfoOf, terms: TermsOf,
                     worded: Worded | None = None) -> tuple[str, str]:
    """The query over all chains (one paragraph per chain) and the answer citing key fields of
    the real responses. ``worded``, kept by the caller over one sample's workflows (one toolbox),
    remembers each step's clause and finding: a step keeps its place and the steps before it
    as its workflow grows (chains only get steps appended), so they read the same."""
    worded = {} if worded is None else worded
    paragraphs, findings, asks = [], [], []
    for ci, chain in enumerate(workflow.chains):
        clauses = []
        for si, step in enumerate(chain.steps):
            hit = worded.get((id(step), ci, si))
            if hit is None or hit[0] is not step:
                tool = info(step.tool)
                hit = (step, step_clause(workflow.chains, ci, si, tool, terms(step), info), finding(step, tool))
                worded[(id(step), ci, si)] = hit  # the step held: its id is not reused
            clauses.append(hit[1])
            findings.append(hit[2])
        paragraphs.append(sequence(clauses, also=ci > 0))
        ask = ask_for(chain.steps[-1], info(chain.steps[-1].tool))
        if ask not in asks:
            asks.append(ask)
    query = " ".join(paragraphs) + f" Tell me {join_words(asks)}."
    return query, " ".join(findings)


def step_clause(chains: Sequence[Chain], ci: int, si: int, tool: ToolInfo | None, terms: ToolTerms | None,
                info: InfoOf) -> str:
    """What to do in step ``si`` of chain ``ci``, with every value the user must supply."""
    step = chains[ci].steps[si]
    said: dict[str, list[str]] = {}
    refs: dict[str, list[str]] = {}  # " of the pet with name 'doggie' from earlier" -> argument words
    for pointer, value in leaves(step.arguments):
        if exemption(terms, pointer, value):
            continue
        found = source_of(step, pointer) if _takes_outputs(tool, pointer) else None
        whence = _whence(chains, ci, si, found, info) if found is not None else None
        if whence is not None:
            words = refs.setdefault(whence, [])
            if value_words(pointer, tool) not in words:
                words.append(value_words(pointer, tool))
        else:
            said.setdefault(value_words(pointer, tool), []).append(state(value))
    clause = tool.phrase if tool else "make the request"
    if said:
        clause += " with " + join_words([f"{words} {join_words(values)}" for words, values in said.items()])
    if refs:
        using = [f"the {join_words(words)}{whence}" for whence, words in refs.items()]
        clause += (", using " if said else " using ") + join_words(using)
    return clause


def state(value: Any) -> str:
    """A value as the query states it: strings quoted in full, numbers as written, yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return "'" + " ".join(value.split()) + "'"
    return str(value)


def value_words(pointer: str, tool: ToolInfo | None) -> str:
    """The words for the argument value at ``pointer``: ``/body/block_feeds/0/feed_id`` ->
    "block feeds feed ID"; a header loses its ``x-`` ("apideck app ID")."""
    tokens = [t for t in pointer_tokens(pointer) if not t.isdigit()]
    spec = tool.arg(tokens[0]) if tool and tokens else None
    if spec is not None and spec.location == "body" and len(tokens) > 1:
        tokens = tokens[1:]  # the whole body is one argument: its fields are what a user names
    if spec is not None and spec.location == "header":
        tokens = [re.sub(r"(?i)^x-", "", tokens[0]), *tokens[1:]]
    return " ".join(as_words(t) for t in tokens) or "value"


def _takes_outputs(tool: ToolInfo | None, pointer: str) -> bool:
    """Only arguments the policy feeds from earlier outputs are referred to; a value of its own
    choosing that happens to equal an earlier output is stated."""
    tokens = pointer_tokens(pointer)
    spec = tool.arg(tokens[0]) if tool and len(tokens) == 1 else None
    return spec is not None and spec.feedable


def _whence(chains: Sequence[Chain], ci: int, si: int, found: tuple[ArgumentSource, str],
            info: InfoOf) -> str | None:
    """ " of the pet with name 'doggie' from the previous result": where a value was taken
    from, or None when some list item on the way cannot be named."""
    source, at = found
    origin = chains[source.chain].steps[source.step]
    qualifiers: list[str] = []
    for depth, (list_at, items, index) in enumerate(lists_on_path(origin.response, at)):
        if len(items) <= 1:
            continue
        inside = at[len(list_at) + len(str(index)) + 1:]  # the value's pointer inside the item
        named = _naming_value(items, index, inside)
        if named is None:
            return None
        noun = noun_of(info(origin.tool)) if depth == 0 else _singular(as_words(pointer_tokens(list_at)[-1]))
        qualifiers.append(f"the {noun} with {named}")
    where = "the previous result" if (source.chain, source.step) == (ci, si - 1) else "earlier"
    return "".join(f" of {q}" for q in reversed(qualifiers)) + f" from {where}"


def _naming_value(items: list[Any], index: int, own: str) -> str | None:
    """ "name 'doggie'": the item's most telling value that no other item holds (not the
    referenced value itself), or None."""
    best: tuple[int, int, str] | None = None
    for at, value in item_identifiers(items, index):
        said = say(value)
        if at == own or not at or said is None:
            continue
        tokens = pointer_tokens(at)
        key = tokens[-1]
        rank = _NAMING_KEYS.index(norm(key)) if norm(key) in _NAMING_KEYS else len(_NAMING_KEYS)
        candidate = (rank, len(tokens), f"{' '.join(as_words(t) for t in tokens)} {said}")
        if best is None or candidate[:2] < best[:2]:
            best = candidate
    return None if best is None else best[2]


def _singular(noun: str) -> str:
    if noun.endswith("ies"):
        return noun[:-3] + "y"
    if noun.endswith(("sses", "xes", "ches", "shes")):
        return noun[:-2]
    return noun[:-1] if noun.endswith("s") and not noun.endswith("ss") else noun
