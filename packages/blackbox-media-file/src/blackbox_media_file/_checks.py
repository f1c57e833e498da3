"""The checks the package's constructors make of their numbers, with one wording.

``TypeError`` for what is not a number at all (a ``bool`` is not one);
``ValueError`` for a number out of range (NaN and infinity included).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = ["check_callback", "check_number", "check_sample_rate", "check_waits"]


def check_sample_rate(value: Any) -> None:
    """A sample rate: a whole number of samples per second, above zero."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"sample_rate must be a whole number, not {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"sample_rate must be positive, not {value}")


def check_number(name: str, value: Any, *, positive: bool = False) -> None:
    """A finite number (of seconds, say): zero or more, or above zero with ``positive``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, not {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "positive" if positive else "zero or more"
        raise ValueError(f"{name} must be {bound} (and finite), not {value!r}")


def check_callback(name: str, value: Callable[..., Any] | None) -> None:
    """A function to call, or ``None``."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, not {type(value).__name__}")


def check_waits(*, silence_after_agent: float, agent_wait: float, max_wait: float) -> None:
    """Check a turn script's waits (``TurnScript``'s arguments of those names).

    Raises:
        TypeError: one is not a number.
        ValueError: one is negative or not finite, or ``max_wait`` is below ``agent_wait``.
    """
    for name, value in {
        "silence_after_agent": silence_after_agent,
        "agent_wait": agent_wait,
        "max_wait": max_wait,
    }.items():
        check_number(name, value)
    if max_wait < agent_wait:
        raise ValueError(f"max_wait ({max_wait}) must be at least agent_wait ({agent_wait})")
