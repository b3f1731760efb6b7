"""Regenerate orchestrator/data/demo_instructions.json, the demo's instruction dataset.

Small, deterministic, Alpaca-format tasks a tiny model can pick up in a few dozen steps:
upper-casing, reversing word order, capitals of countries, adding small numbers and
counting words. Run from the repo root: ``python scripts/make_demo_instructions.py``.
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
}


def examples(rng: random.Random) -> list[dict[str, str]]:
    """Every example, shuffled by ``rng``."""
    rows = []
    for _ in range(60):
        phrase = " ".join(rng.sample(WORDS, rng.randint(2, 4)))
        rows.append(
            {
                "instruction": "Convert the text to uppercase.",
                "input": phrase,
                "output": phrase.upper(),
            }
        )
        rows.append(
            {
                "instruction": "Reverse the order of the words.",
                "input": phrase,
                "output": " ".join(reversed(phrase.split())),
            }
        )
        rows.append(
            {
                "instruction": "How many words are in the text?",
                "input": phrase,
                "output": f"There are {len(phrase.split())} words.",
            }
        )
        a, b = rng.randint(0, 20), rng.randint(0, 20)
        rows.append(
            {
                "instruction": "Add the two numbers.",
                "input": f"{a} and {b}",
                "output": f"{a} + {b} = {a + b}",
            }
        )
    for country, city in CAPITALS.items():
        for _ in range(5):
            rows.append(
                {
                    "instruction": f"What is the capital of {country}?",
                    "input": "",
                    "output": f"The capital of {country} is {city}.",
                }
            )
    rng.shuffle(rows)
    return rows


if __name__ == "__main__":
    out = Path(__file__).resolve().parents[1] / "orchestrator" / "data" / "demo_instructions.json"
    out.write_text(json.dumps(examples(random.Random(0)), indent=1) + "\n")
    print(f"wrote {out}")
