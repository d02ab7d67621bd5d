"""Whether a sample is valid, checked deterministically and without a model. The generator's loop
rejects an update that fails a per-sample check, and the certifier reports each check, so both
use these functions (one implementation).

* **solvable**: every scalar leaf of every step's arguments (``/body/dashboard_id``) is
  - *exempt*: null or a blank string (it carries no value), a credential (an argument an
    apiKey security scheme names), or fixed by the tool's schema (the ``const``, the only
    ``enum`` member, or the ``default`` at that place); or
  - *stated in the query*, after the normalisation of :mod:`toolgrad.validity.statements` (case,
    whitespace, number formatting; a boolean by its property name); or
  - *taken from an earlier response*: a recorded source (at the leaf's pointer or an enclosing
    one) names a step earlier in replay order whose response holds the value at that pointer,
    and for every list with several items on the way to it, the query names the item (it
    states an identifying value of it, see :func:`names_item`). "The 3rd item" names nothing.
* **grounded**: every concrete value the answer states (quoted strings, and words holding a
  digit, an ``@`` or an inner ``_``; see :func:`toolgrad.validity.statements.answer_values`) occurs in a
  response of the chain: equal to a scalar (numbers by value), inside a string scalar as a whole
  word (a number: a word of it, or a date's year or day; not a timestamp's minutes), a step's
  HTTP status, or a whole number equal to the length of a list in a response (a count).
* **coherent**: no step takes values it was not told from different items of one list
  response unless the query names each of those items; and every step is *needed*: it may
  change state (its method is not GET, HEAD or OPTIONS: a write is taken as asked for), or a
  later step takes an argument from it, or the answer states a value of its response.
* **unique** (per dataset): no two samples share an id or a seed (:func:`duplicate_findings`).

What these checks do not prove: that a stated value went to the right argument, that a boolean
was stated the right way round, that an unquoted name in the answer is right, or that the query
is one a person would make (``certify --judge`` asks a model that last question).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from simulator.canonical import escape_token, lookup_pointer, pointer_tokens
from toolgrad.json_values import is_nontrivial as _identifying
from toolgrad.json_values import keyed_leaves, loosely_equal, top_argument
from toolgrad.records import ArgumentSource, Chain, Step

from .statements import ResponseIndex, Text, Written, answer_values, first_unheld
from .tool_terms import TermsOf, ToolTerms

CHECKS = ("replay", "solvable", "grounded", "coherent", "unique")
SAMPLE_CHECKS = ("solvable", "grounded", "coherent")  # pure functions of one sample
_ID_DEPTH = 2  # how deep inside a list item an identifying value may sit


@dataclass(frozen=True, slots=True)
class Finding:
    """Why a check fails: the first offending step (when there is one), the place (a pointer
    into that step's arguments, or ``answer``) and the value there."""

    check: str
    reason: str
    chain: int | None = None
    step: int | None = None
    at: str = ""
    value: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "reason": self.reason, "chain": self.chain, "step": self.step,
                "at": self.at, "value": self.value}

    def describe(self) -> str:
        where = "" if self.chain is None else f" at chain {self.chain} step {self.step}"
        place = f", {self.at}" if self.at else ""
        value = f" = {self.value!r}" if self.value is not None else ""
        return f"{self.check}{where}{place}{value}: {self.reason}"


def _located(chains: Sequence[Chain]) -> list[tuple[int, int, Step]]:
    return [(ci, si, s) for ci, c in enumerate(chains) for si, s in enumerate(c.steps)]


# -- solvable -----------------------------------------------------------------------------------


def exemption(terms: ToolTerms | None, pointer: str, value: Any, top: str | None = None) -> str:
    """Why the value at ``pointer`` needs no statement and no source ("" when it needs one).
    ``top``: the pointer's top-level argument, when the caller knows it."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return "it carries no value"
    if terms is None:
        return ""
    if (top_argument(pointer) if top is None else top) in terms.credentials:
        return "a credential"
    return terms.fixed_by_schema(pointer, value)


def source_of(step: Step, pointer: str) -> tuple[ArgumentSource, str] | None:
    """The recorded source of the leaf at ``pointer`` (its own, or an enclosing object's) and
    the pointer of the leaf's value in the source step's response."""
    source = step.sources.get(pointer)
    if source is not None:
        return source, source.pointer
    for at, enclosing in step.sources.items():
        if pointer.startswith(at + "/"):
            return enclosing, enclosing.pointer + pointer[len(at):]
    return None


def _source_problem(chains: Sequence[Chain], ci: int, si: int, source: ArgumentSource, at: str, value: Any) -> str:
    where = f"chain {source.chain} step {source.step}"
    if not (0 <= source.chain < len(chains) and 0 <= source.step < len(chains[source.chain].steps)):
        return f"its recorded source, {where}, is not a step of the sample"
    if (source.chain, source.step) >= (ci, si):
        return f"its recorded source, {where}, does not come before it"
    found, held = lookup_pointer(chains[source.chain].steps[source.step].response, at)
    if not found or not (held == value or loosely_equal(held, value)):
        return f"its recorded source, {at!r} in {where}, does not hold it"
    return ""


def _identifiers(item: Any, keys: tuple[str, ...] = (),
                 wanted: Callable[[Any], bool] | None = None) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(keys, value) of the identifying scalars of a list item: strings of 3+ characters and
    numbers other than 0/1, in objects up to :data:`_ID_DEPTH` deep (not inside lists); with
    ``wanted``, only those it accepts (asked in the same order, as they are reached)."""
    if not isinstance(item, dict) or len(keys) >= _ID_DEPTH:
        return
    for key, value in item.items():
        if isinstance(value, dict):
            yield from _identifiers(value, (*keys, str(key)), wanted)
        elif _identifying(value) and (wanted is None or wanted(value)):
            yield (*keys, str(key)), value


def _identifier_at(item: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """The identifying scalar :func:`_identifiers` finds at ``keys`` in ``item``, else :data:`_NONE`."""
    node: Any = item
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return _NONE
        node = node[key]
    return node if not isinstance(node, dict) and _identifying(node) else _NONE


_NONE = object()


def item_identifiers(items: list[Any], index: int,
                     wanted: Callable[[Any], bool] | None = None) -> list[tuple[str, Any]]:
    """(pointer inside the item, value) of the identifying values of ``items[index]`` that no
    other item holds at the same place: what a text may name that item by. A scalar item is its
    own identifier (pointer ""). With ``wanted``, only the values it accepts (asked first, so the
    other items are looked at only when one is)."""
    return list(_unique_identifiers(items, index, wanted))


def _unique_identifiers(items: list[Any], index: int,
                        wanted: Callable[[Any], bool] | None) -> Iterator[tuple[str, Any]]:
    """:func:`item_identifiers`, one at a time: a caller that needs only the first walks no further."""
    item = items[index]
    if not isinstance(item, (dict, list)):
        if wanted is None or wanted(item):
            yield "", item
        return
    others: list[dict[str, Any]] | None = None
    for keys, value in _identifiers(item, (), wanted):
        if others is None:
            others = [other for j, other in enumerate(items) if j != index and isinstance(other, dict)]
        # each other item is looked up at the identifier's place only (not walked whole): lists are long
        if not any((held := _identifier_at(other, keys)) is not _NONE and loosely_equal(held, value)
                   for other in others):
            yield "".join(f"/{escape_token(key)}" for key in keys), value


def names_item(text: Text, items: list[Any], index: int) -> bool:
    """Whether the text names ``items[index]``: it states one of its :func:`item_identifiers`
    (the item is looked at up to the first one)."""
    return next(_unique_identifiers(items, index, text.states), None) is not None


class _ItemNames:
    """:func:`names_item` for one check of one sample, each (list, index) asked once (a step
    takes several values from one item; solvable asks for every one of them). The lists are
    the sample's responses, alive while the check runs, so their ids tell them apart."""

    __slots__ = ("_known", "text")

    def __init__(self, text: Text) -> None:
        self.text = text
        self._known: dict[tuple[int, int], bool] = {}

    def names(self, items: list[Any], index: int) -> bool:
        key = (id(items), index)
        named = self._known.get(key)
        if named is None:
            named = self._known[key] = names_item(self.text, items, index)
        return named


def lists_on_path(response: Any, at: str) -> list[tuple[str, list[Any], int]]:
    """(list pointer, list, index) for every list that pointer ``at`` goes through."""
    out: list[tuple[str, list[Any], int]] = []
    node, here = response, ""
    for token in pointer_tokens(at):
        if isinstance(node, list) and token.isdigit() and int(token) < len(node):
            out.append((here, node, int(token)))
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            node = node[token]
        else:
            break
        here += "/" + escape_token(token)
    return out


def _unnamed_item(facts: SampleFacts, source: ArgumentSource, at: str) -> str:
    for list_at, items, index in facts.lists_on_path(source.chain, source.step, at):
        if len(items) > 1 and not facts.names.names(items, index):
            return (f"it is taken from item {index + 1} of the {len(items)}-item list at {list_at or '/'!r} "
                    f"of chain {source.chain} step {source.step}, which the query does not name")
    return ""


# -- what the checks share ----------------------------------------------------------------------

# A scalar of a step's arguments: (pointer, value, top-level argument, whether the query states it,
# its recorded source and the pointer of its value in the source step's response, or None)
ArgumentLeaf = tuple[str, Any, str, bool, "tuple[ArgumentSource, str] | None"]


class SampleFacts:
    """What the per-sample checks ask of one sample, worked out once and shared by them: the
    steps in replay order with their tools' terms, each step's argument leaves (whether the
    query states each, its recorded source), the query prepared (with one memo of the list items
    it names), the answer's values, and, on first use, the lists a source pointer goes through
    and what each response holds. Built from the chains alive while the checks run (the memos
    tell lists apart by id)."""

    __slots__ = ("_held", "_lists", "chains", "leaves", "located", "names", "stated", "terms")

    def __init__(self, chains: Sequence[Chain], query: str, answer: str, terms: TermsOf) -> None:
        self.chains = chains
        self.located = _located(chains)
        self.terms = [terms(step) for _, _, step in self.located]
        text = Text.of(query)
        self.names = _ItemNames(text)
        self.leaves = [_argument_leaves(step, text) for _, _, step in self.located]
        self.stated = answer_values(answer)
        self._lists: dict[tuple[int, int, str], list[tuple[str, list[Any], int]]] = {}
        self._held: list[Written | None] = [None] * len(self.located)

    def lists_on_path(self, chain: int, step: int, at: str) -> list[tuple[str, list[Any], int]]:
        """:func:`lists_on_path` of ``at`` in the response of a step of the sample."""
        key = (chain, step, at)
        found = self._lists.get(key)
        if found is None:
            found = self._lists[key] = lists_on_path(self.chains[chain].steps[step].response, at)
        return found

    def written_latest_first(self) -> Iterator[Written]:
        """:meth:`written` of each step, the last first, each made when it is asked for (an answer
        states most of what the last steps returned: a response after which every value is found
        is never walked)."""
        return (self.written(k) for k in reversed(range(len(self.located))))

    def written(self, k: int) -> Written:
        """What the response of the k-th step (replay order) holds as written."""
        held = self._held[k]
        if held is None:
            held = self._held[k] = Written.of([self.located[k][2].response])
        return held


def _argument_leaves(step: Step, text: Text) -> list[ArgumentLeaf]:
    states = text.states
    return [(pointer, value, top, stated, None if stated else source_of(step, pointer))
            for pointer, value, key, top in keyed_leaves(step.arguments)
            for stated in (states(value, key),)]


def check_solvable(chains: Sequence[Chain], query: str, terms: TermsOf) -> Finding | None:
    """The first argument value a user of ``query`` could not know (see the module text)."""
    return _solvable(SampleFacts(chains, query, "", terms))


def _solvable(facts: SampleFacts) -> Finding | None:
    chains = facts.chains
    for (ci, si, _), tool, leaves in zip(facts.located, facts.terms, facts.leaves, strict=True):
        for pointer, value, top, stated, found in leaves:
            if stated or exemption(tool, pointer, value, top):
                continue
            if found is None:
                return Finding("solvable", "neither stated in the query nor taken from an earlier response",
                               ci, si, pointer, value)
            source, at = found
            reason = _source_problem(chains, ci, si, source, at, value) or _unnamed_item(facts, source, at)
            if reason:
                return Finding("solvable", reason, ci, si, pointer, value)
    return None


# -- grounded -----------------------------------------------------------------------------------


def check_grounded(chains: Sequence[Chain], answer: str) -> Finding | None:
    """The first concrete value of the answer that no response of the chain holds."""
    return _grounded(SampleFacts(chains, "", answer, _no_terms))


def _grounded(facts: SampleFacts) -> Finding | None:
    steps = [s for _, _, s in facts.located]
    value = first_unheld([s.response for s in steps], [s.status for s in steps], facts.stated,
                         facts.written_latest_first)
    if value is not None:
        return Finding("grounded", "the answer states a value that no response of the chain holds",
                       at="answer", value=value.text)
    return None


def _no_terms(step: Step) -> None:
    return None


# -- coherent -----------------------------------------------------------------------------------


def _mixed_items(facts: SampleFacts) -> Finding | None:
    chains = facts.chains
    for (ci, si, _), leaves in zip(facts.located, facts.leaves, strict=True):
        picked: dict[tuple[int, int, str], dict[int, str]] = {}  # list -> item index -> argument pointer
        for pointer, _, _, _, found in leaves:
            if found is None:  # stated in the query, or with no recorded source
                continue
            source, at = found
            if not (0 <= source.chain < len(chains) and 0 <= source.step < len(chains[source.chain].steps)):
                continue  # solvable reports it
            for list_at, _, index in facts.lists_on_path(source.chain, source.step, at):
                picked.setdefault((source.chain, source.step, list_at), {}).setdefault(index, pointer)
        for (c, s, list_at), by_index in picked.items():
            if len(by_index) < 2:
                continue
            _, items = lookup_pointer(chains[c].steps[s].response, list_at)
            unnamed = sorted(i for i in by_index if not facts.names.names(items, i))
            if unnamed:
                return Finding(
                    "coherent",
                    f"it takes fields from {len(by_index)} different items of the list at {list_at or '/'!r} of "
                    f"chain {c} step {s} (items {', '.join(str(i + 1) for i in sorted(by_index))}), and the query "
                    f"does not name item(s) {', '.join(str(i + 1) for i in unnamed)}",
                    ci, si, ", ".join(by_index[i] for i in sorted(by_index)), [i + 1 for i in sorted(by_index)])
    return None


def _unneeded_step(facts: SampleFacts) -> Finding | None:
    fed = {(src.chain, src.step) for _, _, s in facts.located for src in s.sources.values()}
    stated = facts.stated
    for k, ((ci, si, step), tool) in enumerate(zip(facts.located, facts.terms, strict=True)):
        if (tool is not None and tool.writes) or (ci, si) in fed:
            continue
        # what the response holds as written is held by its index too: the index is built only when needed
        if stated and (any(facts.written(k).holds(v) for v in stated)
                       or any(ResponseIndex.of([step.response]).holds(v) for v in stated)):
            continue
        return Finding("coherent", "the step is not needed: it changes nothing, no later step takes an argument "
                       "from it, and the answer states nothing of its response", ci, si, value=step.tool)
    return None


def check_coherent(chains: Sequence[Chain], query: str, answer: str, terms: TermsOf) -> Finding | None:
    """A step that mixes list items the query does not name, or a step that is not needed."""
    return _coherent(SampleFacts(chains, query, answer, terms))


def _coherent(facts: SampleFacts) -> Finding | None:
    return _mixed_items(facts) or _unneeded_step(facts)


# -- every per-sample check, and unique ---------------------------------------------------------


def sample_findings(chains: Sequence[Chain], query: str, answer: str, terms: TermsOf) -> dict[str, Finding | None]:
    """Each per-sample check (:data:`SAMPLE_CHECKS`) -> its first finding, None when it passes."""
    facts = SampleFacts(chains, query, answer, terms)
    return {"solvable": _solvable(facts), "grounded": _grounded(facts), "coherent": _coherent(facts)}


def validity_problem(chains: Sequence[Chain], query: str, answer: str, terms: TermsOf) -> str:
    """The first per-sample finding as one line ("" when every check passes): what the loop
    rejects an update for, and what a model is asked to fix."""
    for finding in sample_findings(chains, query, answer, terms).values():
        if finding is not None:
            return finding.describe()
    return ""


def duplicate_findings(entries: Sequence[tuple[int, str, Any]]) -> dict[int, Finding]:
    """For (line, id, seed) of every sample of a dataset, the lines that repeat an earlier
    line's id or seed, each with what it repeats."""
    unique = Uniqueness()
    found = ((line, unique.finding(line, sample_id, seed)) for line, sample_id, seed in entries)
    return {line: finding for line, finding in found if finding is not None}


class Uniqueness:
    """:func:`duplicate_findings` a sample at a time, in file order: a line's finding depends only
    on the lines before it, so a certificate can be written as its samples are checked. Holds
    each id and seed once (what the unique check must remember), nothing else of a sample."""

    __slots__ = ("_first_id", "_first_seed")

    def __init__(self) -> None:
        self._first_id: dict[str, int] = {}
        self._first_seed: dict[Any, int] = {}

    def finding(self, line: int, sample_id: str, seed: Any) -> Finding | None:
        """The finding of the sample at ``line`` (None when no earlier line has its id or seed)."""
        found = None
        if sample_id in self._first_id:
            found = Finding("unique", f"the same id as line {self._first_id[sample_id]}", at="id", value=sample_id)
        elif seed in self._first_seed:
            found = Finding("unique", f"the same seed as line {self._first_seed[seed]}", at="seed", value=seed)
        self._first_id.setdefault(sample_id, line)
        self._first_seed.setdefault(seed, line)
        return found
