"""Numbers inside a schema's bounds and ``multipleOf``, computed exactly with fractions.

Float bounds and steps are read through their decimal text (``0.1`` is one tenth, not the
binary float nearest to it), so ``multipleOf: 0.01`` yields values such as ``12.34`` that
validators accept.
"""

from __future__ import annotations

import math
from fractions import Fraction
from random import Random
from typing import Any

from .plan import GenerationError


def _exact(value: Any) -> Fraction:
    return Fraction(str(value)) if isinstance(value, float) else Fraction(value)


def bounds(node: dict[str, Any]) -> tuple[Fraction | None, bool, Fraction | None, bool]:
    """(low, low is exclusive, high, high is exclusive) from the four 2020-12 bound keywords."""
    low: Fraction | None = None
    high: Fraction | None = None
    low_open = high_open = False
    for key, is_low, is_open in (
        ("minimum", True, False),
        ("exclusiveMinimum", True, True),
        ("maximum", False, False),
        ("exclusiveMaximum", False, True),
    ):
        bound = node.get(key)
        if isinstance(bound, bool) or not isinstance(bound, int | float) or not math.isfinite(bound):
            continue
        exact = _exact(bound)
        if is_low and (low is None or exact > low or (exact == low and is_open)):
            low, low_open = exact, is_open
        if not is_low and (high is None or exact < high or (exact == high and is_open)):
            high, high_open = exact, is_open
    limit = _FORMAT_LIMITS.get(node.get("format", ""))
    if limit is not None:
        low = max(low, Fraction(-limit - 1)) if low is not None else None
        high = min(high, Fraction(limit)) if high is not None else None
    return low, low_open, high, high_open


_FORMAT_LIMITS = {"int32": 2**31 - 1, "int64": 2**63 - 1}


def multiples(
    unit: Fraction, low: Fraction | None, low_open: bool, high: Fraction | None, high_open: bool
) -> tuple[int | None, int | None]:
    """The range of k with k * unit inside the bounds (None = unbounded on that side)."""
    k_low = k_high = None
    if low is not None:
        k_low = math.ceil(low / unit)
        if low_open and k_low * unit == low:
            k_low += 1
    if high is not None:
        k_high = math.floor(high / unit)
        if high_open and k_high * unit == high:
            k_high -= 1
    return k_low, k_high


def number_in_range(node: dict[str, Any], rng: Random, integer: bool, path: str) -> int | float:
    """A number within the node's bounds and ``multipleOf``, preferring the window 1..1000."""
    low, low_open, high, high_open = bounds(node)
    raw_step = node.get("multipleOf")
    step = _exact(raw_step) if isinstance(raw_step, int | float) and not isinstance(raw_step, bool) else None
    if step is not None and step <= 0:
        step = None
    if integer:
        # k * p/q is an integer exactly when q divides k, so the integer multiples are those of p
        units = [Fraction(step.numerator) if step is not None else Fraction(1)]
    elif step is not None:
        units = [step]
    else:
        units = [Fraction(1, 100), Fraction(1, 10**6), Fraction(1, 10**12)]
    for unit in units:
        k_low, k_high = multiples(unit, low, low_open, high, high_open)
        if k_low is None or k_high is None or k_low <= k_high:
            break
    else:
        raise GenerationError(f"at {path or '/'}: no number fits the bounds and multipleOf", retryable=False)
    # the realistic window, in multiples of unit: values 1..1000 (at least a few multiples)
    window_a = max(1, math.ceil(1 / unit))
    window_b = max(window_a + 2, math.floor(1000 / unit))
    width = window_b - window_a
    if k_low is not None and k_high is not None and k_high - k_low <= width:
        window_a, window_b = k_low, k_high  # a narrow range: all of it
    else:  # slide the window inside the bounds
        if k_low is not None and k_low > window_a:
            window_a, window_b = k_low, k_low + width
        if k_high is not None and k_high < window_b:
            window_a, window_b = k_high - width, k_high
        if k_low is not None:
            window_a = max(window_a, k_low)
    value = rng.randint(window_a, window_b) * unit
    if integer or (step is not None and step.denominator == 1 and value.denominator == 1):
        return int(value)
    return float(value)
