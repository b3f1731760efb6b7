"""What the demo learned: base and tuned answers side by side, and how often they are right.

After ``tune run lora_finetune --config demo`` the summary shows a few prompts answered by
the base model and by the tuned one, then the share of the demo's training prompts the
tuned model answers exactly as trained (greedy decoding) and the share of held-out
word-counting prompts (``orchestrator/data/demo_heldout.json``, none of them in the
training data) it gets right. Tests check the same numbers.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from modeling.data import Message
from orchestrator.generate import ChatModel, load_chat_model

HELDOUT_PATH = Path(__file__).parent / "data" / "demo_heldout.json"
# The README's prompt first; then one of each other task, the last one held out.
COMPARE_PROMPTS = (
    "What is the capital of Italy?",
    "What is the opposite of hot?",
    "How many words are in: stone river apple",
)
MAX_ANSWER_TOKENS = 24  # the demo's answers are a handful of tokens


@dataclass
class Score:
    """Exact-match accuracy on a set of prompts."""

    correct: int
    total: int
    misses: list[dict[str, str]] = field(default_factory=list)  # prompt, expected, answer

    @property
    def accuracy(self) -> float:
        """``correct / total`` (0 for no prompts)."""
        return self.correct / self.total if self.total else 0.0


@dataclass
class DemoReport:
    """Base versus tuned answers, and the tuned model's scores."""

    comparisons: list[dict[str, str]]  # prompt, base, tuned
    train: Score
    heldout: Score

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``tune run --json``), accuracies included."""
        out = asdict(self)
        out["train"]["accuracy"] = self.train.accuracy
        out["heldout"]["accuracy"] = self.heldout.accuracy
        return out


def read_pairs(path: str | Path) -> dict[str, str]:
    """Prompt -> expected answer of a JSON file of ``input``/``output`` rows (unique prompts)."""
    rows = json.loads(Path(path).read_text())
    return {row["input"]: row["output"] for row in rows}


def score(chat: ChatModel, pairs: dict[str, str]) -> Score:
    """How many prompts greedy decoding answers exactly as expected, in one batched pass.

    Each prompt and its expected reply (closed by the end-of-turn token) run through the
    model together; greedy decoding yields exactly that reply, and stops after it, if and
    only if the most likely next token is the reply's own at every one of its positions.
    So one forward pass over all prompts replaces token-by-token decoding (seconds saved
    on a CPU), and a miss is decoded afterwards to show what the model says instead.
    """
    tokenizer = chat.tokenizer
    sequences, starts = [], []
    for prompt, expected in pairs.items():
        messages = [chat.user_message(prompt), Message("assistant", expected)]
        full, _ = tokenizer.tokenize_messages(messages, add_end_tokens=False)
        prefix = chat.prompt_tokens(prompt)
        assert full[: len(prefix)] == prefix, "the chat format must extend the prompt"
        sequences.append(full)
        starts.append(len(prefix))
    width = max(len(s) for s in sequences)
    batch = torch.tensor([s + [tokenizer.pad_id] * (width - len(s)) for s in sequences])
    with torch.no_grad():
        chat.model.eval()
        predicted = chat.model(batch).argmax(-1)  # right padding: earlier positions unaffected
    result = Score(correct=0, total=len(pairs))
    for (prompt, expected), tokens, start, guess in zip(
        pairs.items(), sequences, starts, predicted.tolist(), strict=True
    ):
        if guess[start - 1 : len(tokens) - 1] == tokens[start:]:
            result.correct += 1
        else:
            answer = chat.answer(prompt, max_new_tokens=MAX_ANSWER_TOKENS).strip()
            result.misses.append({"prompt": prompt, "expected": expected, "answer": answer})
    return result


def demo_report(cfg: DictConfig, prompts: tuple[str, ...] = COMPARE_PROMPTS) -> DemoReport:
    """Load the demo's base and tuned models and measure what the fine-tune taught.

    Args:
        cfg: The demo run's config (its ``dataset.source`` is the training data).
        prompts: Prompts to show answered by both models.
    """
    base = load_chat_model(cfg, base=True)
    tuned = load_chat_model(cfg)
    comparisons = [
        {
            "prompt": prompt,
            "base": base.answer(prompt, max_new_tokens=MAX_ANSWER_TOKENS).strip(),
            "tuned": tuned.answer(prompt, max_new_tokens=MAX_ANSWER_TOKENS).strip(),
        }
        for prompt in prompts
    ]
    return DemoReport(
        comparisons=comparisons,
        train=score(tuned, read_pairs(cfg.dataset.source)),
        heldout=score(tuned, read_pairs(HELDOUT_PATH)),
    )


def format_report(report: DemoReport, base_width: int = 30) -> list[str]:
    """The report as terminal lines: a base/tuned table, then the two scores."""
    width = max(len("prompt"), *(len(row["prompt"]) for row in report.comparisons))
    lines = [f"  {'prompt':<{width}}  {'base model':<{base_width}}  tuned model"]
    for row in report.comparisons:
        base = " ".join(row["base"].split())
        base = base if len(base) <= base_width else base[: base_width - 3] + "..."
        lines.append(f"  {row['prompt']:<{width}}  {base:<{base_width}}  {row['tuned']}")
    train, heldout = report.train, report.heldout
    lines.append(
        f"  Training prompts answered as trained: {train.correct}/{train.total} "
        f"({train.accuracy:.0%}); held-out word counts right: {heldout.correct}/"
        f"{heldout.total} ({heldout.accuracy:.0%})"
    )
    return lines
