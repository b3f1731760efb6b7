"""Regenerate the demo's data: ``demo_instructions.json`` (training) and ``demo_heldout.json``.

Prompt/response pairs (``input``/``output``, read by ``instruct_dataset``) a 2-layer model
learns in about a minute on two CPU cores: capitals of countries and opposites of words
(facts to memorise, each asked four times) and counting the words of a phrase (a rule it
can apply to phrases it never saw). ``demo_heldout.json`` holds word-counting prompts that
are not in the training data, to measure how far the rule generalises. Run from the repo
root: ``python scripts/make_demo_instructions.py``.
"""

import json
import random
from pathlib import Path

WORDS = (  # noqa: SIM905
    "red blue green small large quick slow happy river stone cloud light bright dark "
    "apple bread tiger eagle ocean forest winter summer music paper garden window"
).split()
CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Egypt": "Cairo",
    "Kenya": "Nairobi",
    "Peru": "Lima",
    "Canada": "Ottawa",
    "Norway": "Oslo",
    "Chile": "Santiago",
    "India": "New Delhi",
    "Greece": "Athens",
    "Germany": "Berlin",
    "Brazil": "Brasilia",
    "China": "Beijing",
    "Poland": "Warsaw",
}
OPPOSITES = {
    "hot": "cold",
    "big": "small",
    "fast": "slow",
    "up": "down",
    "light": "dark",
    "happy": "sad",
    "old": "new",
    "early": "late",
    "open": "closed",
    "full": "empty",
    "high": "low",
    "hard": "soft",
    "wet": "dry",
    "loud": "quiet",
    "rich": "poor",
    "strong": "weak",
}
COPIES = 4  # each fact is asked this many times per epoch
COUNTING_PHRASES = 60
HELDOUT_PHRASES = 40


def counting(rng: random.Random, count: int) -> list[dict[str, str]]:
    """``count`` "How many words are in: ..." pairs over random phrases of 1-5 words."""
    rows = []
    for _ in range(count):
        words = rng.sample(WORDS, rng.randint(1, 5))
        answer = "There is 1 word." if len(words) == 1 else f"There are {len(words)} words."
        rows.append({"input": f"How many words are in: {' '.join(words)}", "output": answer})
    return rows


def training_rows(rng: random.Random) -> list[dict[str, str]]:
    """Every training example, shuffled by ``rng``."""
    rows = counting(rng, COUNTING_PHRASES)
    for country, city in CAPITALS.items():
        question = f"What is the capital of {country}?"
        rows += [{"input": question, "output": f"The capital of {country} is {city}."}] * COPIES
    for word, opposite in OPPOSITES.items():
        question = f"What is the opposite of {word}?"
        rows += [{"input": question, "output": f"The opposite of {word} is {opposite}."}] * COPIES
    rng.shuffle(rows)
    return rows


def heldout_rows(train: list[dict[str, str]], rng: random.Random) -> list[dict[str, str]]:
    """Word-counting prompts that are not among ``train``'s, each once."""
    seen = {row["input"] for row in train}
    rows: dict[str, dict[str, str]] = {}
    while len(rows) < HELDOUT_PHRASES:
        row = counting(rng, 1)[0]
        if row["input"] not in seen:
            rows.setdefault(row["input"], row)
    return list(rows.values())


if __name__ == "__main__":
    data = Path(__file__).resolve().parents[1] / "orchestrator" / "data"
    train = training_rows(random.Random(0))
    heldout = heldout_rows(train, random.Random(1))
    for name, rows in (("demo_instructions.json", train), ("demo_heldout.json", heldout)):
        (data / name).write_text(json.dumps(rows, indent=1) + "\n")
        print(f"wrote {data / name} ({len(rows)} rows)")
