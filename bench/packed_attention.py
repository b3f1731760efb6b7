"""Packed attention on this CPU: the dense-mask SDPA path next to flex_attention.

One packed batch (random document lengths, each pack ``--seq`` tokens) through a small
Llama 3 in float32. Times the packed training step (mask build, forward, cross-entropy,
backward) and the forward alone (best and median of alternating rounds), for:

- ``sdpa additive``: the recipe's CPU path (``packed_attention_mask``: one float32 additive
  mask shared by every layer);
- ``sdpa bool``: the same mask as booleans (SDPA converts it in every layer);
- ``flex eager`` / ``flex compiled``: a BlockMask through ``flex_attention``, eager or
  ``torch.compile(flex_attention)``. torch refuses flex backward on the CPU; the step is
  also tried with that check lifted, which runs torch's reference backward (eager) or
  inductor's (compiled), to see what it would cost;
- ``sdpa causal``: unpacked causal attention at the same shape (wrong for packs: it lets
  documents see each other), the flash-kernel floor.

    python -m bench.packed_attention [--layers 4 --dim 512 --seq 512 --batch 4 --iters 3]

A benchmark, not a test: it prints figures and asserts none.
"""

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import torch
import torch.nn.attention.flex_attention as flex_module
import torch.nn.functional as F

import modeling.modules.attention as attention_module
from bench.small_llama import add_size_args, sizes
from modeling.llama3 import llama3
from modeling.modules.attention_masks import (
    block_causal_block_mask,
    block_causal_dense_mask,
    packed_attention_mask,
)

warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
_EAGER_FLEX = attention_module._flex_attention
_COMPILED = torch.compile(flex_module.flex_attention, dynamic=False)


def _compiled_flex(q, k, v, block_mask, enable_gqa):
    return _COMPILED(q, k, v, block_mask=block_mask, enable_gqa=enable_gqa)


def packed_batch(batch: int, seq: int, seed: int = 0):
    """Tokens, per-document positions and document ids: documents of seq/8 to seq/2 tokens."""
    generator = torch.Generator().manual_seed(seed)
    ids, pos = [], []
    for _ in range(batch):
        lengths, room = [], seq
        while room:
            n = min(room, int(torch.randint(seq // 8, seq // 2 + 1, (), generator=generator)))
            lengths.append(n)
            room -= n
        ids.append(torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths)))
        pos.append(torch.cat([torch.arange(n) for n in lengths]))
    tokens = torch.randint(0, 768, (batch, seq), generator=generator)
    return tokens, torch.stack(pos), torch.stack(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_args(parser)
    parser.add_argument("--iters", type=int, default=5)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = llama3(**{**sizes(args), "max_seq_len": max(args.seq, 256)})
    tokens, input_pos, ids = packed_batch(args.batch, args.seq)
    tokens = tokens % args.vocab
    labels = tokens.roll(-1, dims=1)

    masks = {
        "sdpa additive": lambda: packed_attention_mask(ids),
        "sdpa bool": lambda: block_causal_dense_mask(ids),
        "flex eager": lambda: block_causal_block_mask(ids),
        "flex compiled": lambda: block_causal_block_mask(ids),
        "sdpa causal": lambda: None,
    }

    def run(name: str, train: bool) -> Callable[[], None]:
        def call() -> None:
            attention_module._flex_attention = (
                _compiled_flex if name == "flex compiled" else _EAGER_FLEX
            )
            mask = masks[name]()
            pos = None if mask is None else input_pos
            if train:
                model.train().zero_grad(set_to_none=True)
                logits = model(tokens, mask=mask, input_pos=pos)
                F.cross_entropy(logits.flatten(0, 1), labels.flatten()).backward()
            else:
                with torch.no_grad():
                    model.eval()(tokens, mask=mask, input_pos=pos)

        return call

    params = sum(p.numel() for p in model.parameters())
    print(
        f"llama3 {params / 1e6:.1f}M params ({args.layers} layers, dim {args.dim}), packed batch "
        f"{args.batch} x {args.seq}, float32, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}"
    )
    tokens_per_step = args.batch * args.seq
    for phase, train in (("train step", True), ("forward", False)):
        variants = {}  # label -> (step, lifted CPU check or None)
        for name in masks:
            variants[name] = (run(name, train), None)
            if train and name.startswith("flex"):
                variants[name + " (CPU check lifted)"] = (run(name, train), _no_check)
        # The first call of each variant compiles what it needs and is reported apart;
        # then rounds alternate between the variants so machine noise hits them alike.
        firsts, times, failures = {}, {label: [] for label in variants}, {}
        for rnd in range(args.iters + 1):
            for label, (step, check) in variants.items():
                if label in failures:
                    continue
                try:
                    times[label].append(_call(step, check))
                except Exception as error:  # a refusal is a result here
                    reason = str(error).strip().splitlines()[0][:80]
                    failures[label] = f"{type(error).__name__}: {reason}"
                    continue
                if rnd == 0:
                    firsts[label] = times[label].pop()
        for label in variants:
            if label in failures:
                print(f"{phase:>10} | {label:<32} | fails: {failures[label]}")
                continue
            best, median = min(times[label]), statistics.median(times[label])
            print(
                f"{phase:>10} | {label:<32} | {tokens_per_step / best:7.0f} tokens/s best, "
                f"{tokens_per_step / median:7.0f} median | first call {firsts[label]:6.2f} s"
            )


def _no_check(*tensors) -> None:
    return None


def _call(step: Callable[[], None], check) -> float:
    """Seconds one call of ``step`` takes, with torch's flex device check swapped if asked."""
    saved = flex_module._validate_device
    if check is not None:
        flex_module._validate_device = check
    try:
        start = time.perf_counter()
        step()
        return time.perf_counter() - start
    finally:
        flex_module._validate_device = saved
        attention_module._flex_attention = _EAGER_FLEX


if __name__ == "__main__":
    main()
