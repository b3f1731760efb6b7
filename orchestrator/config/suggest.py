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


def closest_path(path: str, candidates: Iterable[str], cutoff: float = 0.75) -> str | None:
    """The dotted path among ``candidates`` that ``path`` most likely misspells, or None.

    Only the parts after the module prefix the two share are compared, so a long common
    prefix (``torchtune.training.``) does not make unrelated names look alike; a candidate
    with the same final name under another module (``torchtune.training.DiskLogger`` for
    ``torchtune.training.metric_logging.DiskLogger``) also counts as close.

    Args:
        path: What the user wrote.
        candidates: Valid dotted paths.
        cutoff: Lowest similarity in [0, 1] of the differing parts worth suggesting.
    """
    parts = path.split(".")
    best: tuple[float, float, str] | None = None
    for candidate in candidates:
        other = candidate.split(".")
        shared = 0
        while shared < min(len(parts), len(other)) - 1 and parts[shared] == other[shared]:
            shared += 1
        tail = difflib.SequenceMatcher(
            None, ".".join(parts[shared:]), ".".join(other[shared:])
        ).ratio()
        score = 1.0 if parts[-1] == other[-1] else tail
        if score >= cutoff:
            key = (score, difflib.SequenceMatcher(None, path, candidate).ratio(), candidate)
            best = key if best is None or key[:2] > best[:2] else best
    return best[2] if best else None
