"""Closest-name suggestions for typos in keys, component paths, built-ins and recipes."""

import difflib
from collections.abc import Iterable


def closest(name: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The candidate most similar to ``name`` (difflib ratio), or None if none is close.

    Args:
        name: What the user wrote.
        candidates: Valid names.
        cutoff: Lowest similarity in [0, 1] worth suggesting.
    """
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=cutoff)
    return matches[0] if matches else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``" Did you mean 'x'?"`` for the closest candidate, or ``""`` when none is close."""
    match = closest(name, candidates)
    return f" Did you mean '{match}'?" if match else ""
