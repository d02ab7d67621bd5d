"""The rule-based validator: whether a call that ran counts as a success for the loop.

A call fails when it was not made (status 0), answered outside 2xx, answered an empty object,
list or string, or answered a body that reports an error whatever its status said. No body at
all passes: that is what a spec-documented "no content" write answers.
"""

from __future__ import annotations

from typing import Any

from toolgrad.toolbox import ToolResult

ERROR_KEYS = frozenset({"error", "errors", "message", "detail"})


def is_empty(body: Any) -> bool:
    if body is None:
        return True
    if isinstance(body, str):
        return not body.strip()
    return isinstance(body, (dict, list)) and not body


def is_error_like(body: Any) -> bool:
    """A body that reports an error rather than data (whatever the status said)."""
    if isinstance(body, dict):
        if set(body) <= ERROR_KEYS:
            return True
        return bool(body.get("error"))
    if isinstance(body, str):
        return body.strip().lower().startswith(("error", "exception", "traceback"))
    return False


def failure_reason(result: ToolResult) -> str:
    """Why the validator fails a call ("" when it passes)."""
    if result.status == 0:
        return f"{result.tool}: call not made: {result.error or 'no status'}"
    if not 200 <= result.status < 300:
        return f"{result.tool}: HTTP {result.status}"
    # no body at all is what a spec-documented "no content" write answers (204, or a 200
    # whose response has no content): a success; an empty object/list/string is not
    if result.body is not None and is_empty(result.body):
        return f"{result.tool}: empty response"
    if is_error_like(result.body):
        return f"{result.tool}: error-like response"
    return ""
