"""The paper's own pass-rate check: a model judges whether a sample's chain and answer resolve
its query.

What a caller may rely on: one structured-output call per sample (``{"resolved": bool,
"rationale": str}``) through a :class:`~toolgrad.backends.base.ChatModel`; with the ``openai``
backend's record/replay cache every exchange is stored under the content address of its
request, so a rerun (``--replay-only``) gives the same verdicts, and so the same certificate
bytes, without a server. The prompt shows the query, every call with its arguments and its real
(truncated) result, and the answer. A reply that is not a usable verdict fails the check with
the model's error as the reason; a replay-only cache miss stops the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from toolgrad.backends.base import CacheMiss, ChatModel, ModelError
from toolgrad.loop.policy import Workflow
from toolgrad.policies.model import prompts
from toolgrad.records import Sample

from .replay import BenchmarkError

JUDGE_SYSTEM = (
    "You review tool-use training data. Given a user's request, the API calls made for it with "
    "their real results, and the final answer, decide whether the calls and the answer fully "
    "resolve the request: every part of it done or answered, nothing made up, the answer true to "
    "the results. Reply with JSON only."
)
JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"resolved": {"type": "boolean"}, "rationale": {"type": "string"}},
    "required": ["resolved", "rationale"],
}
WORKFLOW_CHARS = 4000  # the calls and results shown, in characters
MAX_TOKENS = 256


@dataclass(frozen=True, slots=True)
class JudgeVerdict:
    resolved: bool
    rationale: str
    cache_key: str = ""  # content address of the exchange (the record/replay cache key)


def judge_messages(sample: Sample) -> list[dict[str, Any]]:
    calls = prompts.render_workflow(Workflow(chains=sample.chains), WORKFLOW_CHARS)
    user = (f"Request:\n{sample.query}\n\nCalls and their results:\n{calls}\n\nFinal answer:\n{sample.answer}\n\n"
            "Do these calls and this answer resolve the request?\n"
            'JSON: {"resolved": true, "rationale": "..."}')
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def judge_sample(chat: ChatModel, sample: Sample) -> JudgeVerdict:
    """The judge's verdict on one sample (temperature 0). A model error is a failed verdict with
    the error as its rationale; a replay-only cache miss is a :class:`BenchmarkError`."""
    try:
        completion = chat.complete(judge_messages(sample), json_schema=JUDGE_SCHEMA, temperature=0.0,
                                   max_tokens=MAX_TOKENS)
    except CacheMiss as exc:
        raise BenchmarkError(f"judge: {exc}") from exc
    except ModelError as exc:
        return JudgeVerdict(False, f"the judge gave no usable verdict: {exc}")
    try:
        document = orjson.loads(completion.content)
    except orjson.JSONDecodeError:
        document = None
    if not isinstance(document, dict) or not isinstance(document.get("resolved"), bool):
        return JudgeVerdict(False, f"the judge's reply is not a verdict: {prompts.clip(completion.content, 200)!r}",
                            completion.cache_key)
    return JudgeVerdict(document["resolved"], str(document.get("rationale", "")).strip(), completion.cache_key)


def judge_samples(chat: ChatModel, samples: Iterable[tuple[int, Sample]]) -> dict[int, JudgeVerdict]:
    """Each (line, sample)'s verdict, by line."""
    return {line: judge_sample(chat, sample) for line, sample in samples}
