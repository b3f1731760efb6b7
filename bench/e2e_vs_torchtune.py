"""End to end: ``tune run lora_finetune`` next to torchtune's real ``lora_finetune_single_device``.

Both commands run their shipped Llama 2 7B LoRA configs unchanged except for command-line
overrides that point them at the same local files and shrink the model: a random
Llama 2-shaped checkpoint (``--layers``/``--dim``, vocabulary 32,000: 45.4M parameters at
the defaults) in Hugging Face format, a SentencePiece tokenizer trained here, and an
Alpaca-style JSON file whose every sample is longer than ``--seq`` tokens, so each step
is exactly ``--batch`` x ``--seq`` tokens on both sides. LoRA on q/v (rank 8), AdamW,
float32, no activation checkpointing; every token scored (``--train-on-input``, the
default) or, with ``--no-train-on-input``, only the responses, the first
``--prompt-fraction`` of each sample being the prompt (BOS, the Alpaca template, the instruction).
``--min-length F`` draws each sample's length uniformly from F x ``--seq`` to ``--seq``
instead, so batches pad to their longest, as real instruction data does.

Throughput is the samples' own tokens (padding left out) per second at the steady step
time, measured the same way for both: each command runs ``--short-steps`` and ``--steps``
steps, and the difference of the two wall times over the extra steps is one step
(start-up and output writing cancel).
Wall time is the whole long command, start-up included. ``--repeats N`` measures each
side N times, alternating, and reports the median (this shared machine's speed drifts
by 5-10% over minutes). torchtune runs from its own virtual environment (see
DEVELOPERS.md):

    python -m bench.e2e_vs_torchtune --torchtune-venv /tmp/ttvenv [--steps 25 --repeats 3]
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

WORDS = 3000


def make_assets(root: Path, args: argparse.Namespace) -> dict:
    """Checkpoint, tokenizer and data shared by both runs, kept in ``root`` for reuse.

    Each file is named for the flags that shape it (a later run with other sizes, steps
    or sequence length makes its own), and each draws from its own seeded generator, so
    a file is the same whichever of them a run finds already made.
    """
    root.mkdir(parents=True, exist_ok=True)
    shape = f"{args.layers}x{args.dim}-h{args.heads}-s{args.seq}"
    model_dir, tokenizer = root / f"model-{shape}", root / "tokenizer.model"
    rows = args.batch * (args.steps + 2)
    data = root / (
        f"data-s{args.seq}-n{rows}-prompt{args.prompt_fraction:g}-len{args.min_length:g}-v3.json"
    )
    vocab_rng = random.Random(0)
    vocab = [
        "".join(vocab_rng.choices("abcdefghijklmnopqrstuvwxyz", k=vocab_rng.randint(2, 9)))
        for _ in range(WORDS)
    ]
    if not tokenizer.exists():
        import sentencepiece as spm

        rng = random.Random(2)
        corpus = root / "corpus.txt"
        corpus.write_text("\n".join(" ".join(rng.choices(vocab, k=30)) for _ in range(20_000)))
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(root / "tokenizer"),
            vocab_size=4000,
            model_type="bpe",
            bos_id=1,
            eos_id=2,
            unk_id=0,
            pad_id=-1,
            hard_vocab_limit=False,
            minloglevel=2,
        )
    rate = TokenizerRate(tokenizer, vocab)
    if not data.exists():
        prompt_words = rate.prompt_words(args.prompt_fraction * args.seq)
        rng, length_rng = random.Random(1), random.Random(4)
        samples = []
        for _ in range(rows):
            instruction = " ".join(rng.choices(vocab, k=prompt_words))
            if args.min_length < 1:  # uniform lengths; batches pad to their longest
                length = length_rng.uniform(args.min_length, 1.0) * args.seq
                response = length - rate.prompt_tokens(instruction) - 1  # EOS closes it
                response_words = max(1, round(response / rate.per_word))
            else:  # every sample longer than --seq: full batches
                response_words = 2 * args.seq
            output = " ".join(rng.choices(vocab, k=response_words))
            samples.append({"instruction": instruction, "input": "", "output": output})
        data.write_text(json.dumps(samples))
    if not (model_dir / "config.json").exists():
        import torch
        import transformers

        config = transformers.LlamaConfig(
            vocab_size=32_000,
            hidden_size=args.dim,
            intermediate_size=_intermediate(args.dim),
            num_hidden_layers=args.layers,
            num_attention_heads=args.heads,
            num_key_value_heads=args.heads,
            max_position_embeddings=args.seq,
            rope_theta=10_000.0,
        )
        torch.manual_seed(0)
        transformers.LlamaForCausalLM(config).save_pretrained(model_dir, safe_serialization=True)
    # The samples of the steps a measurement times: those after --short-steps.
    measured = json.loads(data.read_text())[args.batch * args.short_steps : args.batch * args.steps]
    tokens = sum(rate.sample_tokens(row, args.seq) for row in measured) / len(measured)
    return {
        "model": model_dir,
        "tokenizer": tokenizer,
        "data": data,
        "tokens_per_step": tokens * args.batch,
    }


class TokenizerRate:
    """Token counts of this bench's text under its tokenizer, to size samples in tokens."""

    def __init__(self, tokenizer: Path, vocab: list[str]) -> None:
        import sentencepiece as spm

        from orchestrator.datasets.messages import ALPACA_PROMPT_NO_INPUT

        self._sp = spm.SentencePieceProcessor(model_file=str(tokenizer))
        self._template = ALPACA_PROMPT_NO_INPUT
        sample = " ".join(random.Random(3).choices(vocab, k=2000))
        self.per_word = len(self._sp.encode(sample)) / 2000

    def prompt_tokens(self, instruction: str) -> int:
        """Tokens of the prompt: BOS, the Alpaca template and ``instruction``."""
        return 1 + len(self._sp.encode(self._template.format(instruction=instruction)))

    def prompt_words(self, tokens: float) -> int:
        """Instruction words that make the prompt ``tokens`` long."""
        return max(1, round((tokens - self.prompt_tokens("")) / self.per_word))

    def sample_tokens(self, row: dict, seq: int) -> int:
        """About how many tokens ``row`` takes, EOS included, truncated to ``seq``."""
        return min(
            seq, self.prompt_tokens(row["instruction"]) + len(self._sp.encode(row["output"])) + 1
        )


def _intermediate(dim: int) -> int:
    return 256 * ((int(8 * dim / 3) + 255) // 256)  # Llama 2's SwiGLU sizing


def model_overrides(prefix: str, args: argparse.Namespace) -> list[str]:
    """The shrunken model on either side (``+`` adds keys our config does not have)."""
    sizes = {
        "vocab_size": 32_000,
        "num_layers": args.layers,
        "num_heads": args.heads,
        "num_kv_heads": args.heads,
        "embed_dim": args.dim,
        "max_seq_len": args.seq,
        "intermediate_dim": _intermediate(args.dim),
    }
    return [
        f"model._component_={prefix}.llama2.lora_llama2",
        "model.lora_attn_modules=[q_proj,v_proj]",
        "model.apply_lora_to_mlp=False",
        *[f"+model.{k}={v}" for k, v in sizes.items()],
    ]


def ours_command(assets: dict, out: Path, steps: int, args: argparse.Namespace) -> list[str]:
    tune = Path(sys.executable).parent / "tune"
    command = [
        str(tune),
        "run",
        "lora_finetune",
        "--config",
        "llama2/7B_lora",
        f"output_dir={out}",
        f"tokenizer.path={assets['tokenizer']}",
        f"tokenizer.max_seq_len={args.seq}",
        f"checkpointer.checkpoint_dir={assets['model']}",
        "dataset._component_=orchestrator.datasets.alpaca_dataset",
        f"+dataset.source={assets['data']}",
        f"+dataset.train_on_input={args.train_on_input}",
        f"batch_size={args.batch // args.workers}",
        "gradient_accumulation_steps=1",
        f"max_steps_per_epoch={steps}",
        "shuffle=False",  # both sides take the same batches, in file order
        "enable_activation_checkpointing=False",
        "dtype=fp32",
        "save_every_n_steps=null",
        f"num_workers={args.workers}",
        "gpus_per_worker=0",
        *model_overrides("modeling", args),
    ]
    return command


def torchtune_command(assets: dict, out: Path, steps: int, args: argparse.Namespace) -> list[str]:
    tune = Path(args.torchtune_venv) / "bin" / "tune"
    command = [
        str(tune),
        "run",
        "lora_finetune_single_device",
        "--config",
        "llama2/7B_lora_single_device",
        f"output_dir={out}",
        f"tokenizer.path={assets['tokenizer']}",
        f"tokenizer.max_seq_len={args.seq}",
        f"checkpointer.checkpoint_dir={assets['model']}",
        "checkpointer.checkpoint_files=[model.safetensors]",
        "dataset._component_=torchtune.datasets.alpaca_dataset",
        "dataset.source=json",
        f"dataset.data_files={assets['data']}",
        f"dataset.train_on_input={args.train_on_input}",
        "dataset.split=train",
        f"batch_size={args.batch}",
        "gradient_accumulation_steps=1",
        f"max_steps_per_epoch={steps}",
        "shuffle=False",
        "enable_activation_checkpointing=False",
        "dtype=fp32",
        "device=cpu",
        "optimizer.fused=False",
        "seed=0",
        *[o.replace("+model.", "model.") for o in model_overrides("torchtune.models", args)],
    ]
    return command


def measure(make_command, root: Path, args: argparse.Namespace, tokens_per_step: float) -> dict:
    """Steady step time from the wall times of a short and a long run of the command.

    Start-up, loading and writing the outputs cost both runs the same and cancel out.
    Tokens are the samples' own (padding left out); both sides see the same batches.
    """
    walls = {}
    for steps in (args.short_steps, args.steps):
        out = root / f"{steps}-steps-{os.getpid()}"
        walls[steps] = _timed(make_command(out, steps))
        shutil.rmtree(out, ignore_errors=True)
    step = (walls[args.steps] - walls[args.short_steps]) / (args.steps - args.short_steps)
    return {
        "wall_s": round(walls[args.steps], 1),
        "step_s": round(step, 3),
        "tokens_per_second": round(tokens_per_step / step, 1),
    }


def _timed(command: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"{command[0]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torchtune-venv", default="/tmp/ttvenv")
    parser.add_argument("--workdir", default="/tmp/tunefleet-bench-e2e")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4, help="global batch (samples)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--short-steps", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--only", choices=("ours", "torchtune"))
    parser.add_argument(
        "--repeats", type=int, default=1, help="measure each side this many times, alternating"
    )
    parser.add_argument(
        "--prompt-fraction", type=float, default=0.05, help="share of each sample that is prompt"
    )
    parser.add_argument(
        "--min-length",
        type=float,
        default=1.0,
        help="shortest sample as a share of --seq, lengths uniform up to --seq (1: all full)",
    )
    parser.add_argument(
        "--train-on-input",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="score prompt tokens too (--no-train-on-input: instruction tuning's masking)",
    )
    args = parser.parse_args()
    if not 0 < args.min_length <= 1:
        parser.error(f"--min-length {args.min_length} must be in (0, 1]")
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats} must be at least 1")
    if args.batch % args.workers:
        parser.error(f"--batch {args.batch} must divide by --workers {args.workers}")
    root = Path(args.workdir)
    assets = make_assets(root / "assets", args)
    commands = {
        "tunefleet": lambda out, steps: ours_command(assets, out, steps, args),
        "torchtune": lambda out, steps: torchtune_command(assets, out, steps, args),
    }
    if args.only:
        commands = {k: v for k, v in commands.items() if k == _SIDES[args.only]}
    runs = {side: [] for side in commands}
    for _ in range(args.repeats):  # the sides alternate, so a slow spell hits both
        for side, command in commands.items():
            runs[side].append(measure(command, root, args, assets["tokens_per_step"]))
    results = {side: _median_run(side_runs) for side, side_runs in runs.items()}
    if len(results) == 2:
        ours, theirs = results["tunefleet"], results["torchtune"]
        results["ratio_tokens_per_second"] = round(
            ours["tokens_per_second"] / theirs["tokens_per_second"], 3
        )
        results["ratio_wall"] = round(theirs["wall_s"] / ours["wall_s"], 3)
    print(json.dumps(results, indent=2))


_SIDES = {"ours": "tunefleet", "torchtune": "torchtune"}


def _median_run(runs: list[dict]) -> dict:
    """The run of median tokens/s, with every run's tokens/s beside it when repeated."""
    median = sorted(runs, key=lambda r: r["tokens_per_second"])[len(runs) // 2]
    if len(runs) > 1:
        median = {**median, "tokens_per_second_each": [r["tokens_per_second"] for r in runs]}
    return median


if __name__ == "__main__":
    main()
