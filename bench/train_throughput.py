"""LoRA training throughput and memory: our recipe's step next to transformers + PEFT.

Both sides train the same Llama 3-shaped model (identical weights) with LoRA on q/v
(rank 8) on the same random token batches, AdamW over the adapters, float32 on the CPU.
The batches are shaped like instruction tuning: the first ``--prompt-fraction`` of every
sequence is prompt, labelled -100 (no loss), as ``train_on_input=False`` datasets give.
Each side runs in its own fresh process so peak RSS is its own. Ours runs the recipe's own
step (``orchestrator.recipes.finetune._accumulate`` with the chunked cross-entropy);
theirs is ``LlamaForCausalLM`` wrapped by ``peft.get_peft_model`` with its built-in loss.

MFU: model FLOP/s divided by this CPU's measured float32 matmul peak (a 2048^3 matmul
timed here). Model FLOPs per token = 4 x frozen matmul params + 6 x trainable params
(frozen weights need no weight gradient) plus attention, the same nominal count for both
sides (so MFU ratios equal tokens/s ratios; ours skips the vocabulary projection at
prompt positions, which is work avoided, not counted).

    python -m bench.train_throughput [--layers 4 --dim 512 --seq 512 --batch 4 --steps 8]

torchtune's ``lora_finetune_single_device`` is not measured: torchtune cannot be installed
from this machine's package index.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

from bench.small_llama import add_size_args, hf_model, our_state_dict, sizes


def peak_matmul_flops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def batches(args) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(tokens, labels)`` pairs; labels are -100 over each sequence's prompt part."""
    g = torch.Generator().manual_seed(1)
    out = []
    for _ in range(args.steps + 2):
        tokens = torch.randint(0, args.vocab, (args.batch, args.seq), generator=g)
        labels = tokens.clone()
        labels[:, : int(args.seq * args.prompt_fraction)] = -100
        out.append((tokens, labels))
    return out


def run_ours(args) -> dict:
    from modeling.llama3 import lora_llama3
    from modeling.peft import get_adapter_params, set_trainable_params
    from orchestrator.recipes.finetune import _accumulate
    from orchestrator.training.loss import CEWithChunkedOutputLoss

    state = our_state_dict(hf_model(args))
    model = lora_llama3(["q_proj", "v_proj"], lora_rank=8, lora_alpha=16, **sizes(args))
    model.load_state_dict(state, strict=False)
    del state
    adapters = get_adapter_params(model)
    set_trainable_params(model, adapters)
    optimizer = torch.optim.AdamW(adapters.values(), lr=1e-4)
    loss_fn = CEWithChunkedOutputLoss()
    times = []
    for tokens, labels in batches(args):
        start = time.perf_counter()
        _accumulate(model, loss_fn, [{"tokens": tokens, "labels": labels}], "cpu", 1)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return _summary(model, times[2:], args)


def run_theirs(args) -> dict:
    import peft

    model = peft.get_peft_model(
        hf_model(args), peft.LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])
    )
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    times = []
    for tokens, labels in batches(args):
        start = time.perf_counter()
        model(input_ids=tokens, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return _summary(model, times[2:], args)


def _summary(model, times, args) -> dict:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    s = sizes(args)
    attention = 4 * s["num_layers"] * args.seq * s["embed_dim"]  # QK^T and AV, fwd+bwd ~3x
    matmul_frozen = frozen - s["vocab_size"] * s["embed_dim"]  # the embedding is a lookup
    flops_per_token = 4 * matmul_frozen + 6 * trainable + 3 * attention
    tokens_per_s = args.batch * args.seq / statistics.median(times)
    return {
        "tokens_per_s": tokens_per_s,
        "flops_per_s": tokens_per_s * flops_per_token,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "trainable": trainable,
        "frozen": frozen,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_args(parser)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--prompt-fraction", type=float, default=0.5)
    parser.add_argument("--side", choices=["ours", "theirs"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(run_ours(args) if args.side == "ours" else run_theirs(args)))
        return
    peak = peak_matmul_flops()
    results = {}
    for side in ("ours", "theirs"):
        out = subprocess.run(
            [sys.executable, "-m", "bench.train_throughput", *sys.argv[1:], "--side", side],
            capture_output=True,
            text=True,
            check=True,
        )
        results[side] = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"Llama 3 shape: {args.layers} layers, dim {args.dim}, vocab {args.vocab}; LoRA r=8 "
        f"on q,v; batch {args.batch} x {args.seq} (first {args.prompt_fraction:.0%} of each "
        f"sequence is prompt, no loss); float32; {torch.get_num_threads()} "
        f"threads; CPU matmul peak {peak / 1e9:.1f} GFLOP/s"
    )
    for side, name in (("ours", "tunefleet recipe step"), ("theirs", "transformers + PEFT")):
        r = results[side]
        print(
            f"{name:>22}: {r['tokens_per_s']:8.0f} tokens/s  MFU {r['flops_per_s'] / peak:6.1%}"
            f"  peak RSS {r['peak_rss_gib']:.2f} GiB"
        )
    ours, theirs = results["ours"], results["theirs"]
    print(
        f"ratio tokens/s ours/theirs: {ours['tokens_per_s'] / theirs['tokens_per_s']:.2f}; "
        f"peak RSS ours/theirs: {ours['peak_rss_gib'] / theirs['peak_rss_gib']:.2f}"
    )


if __name__ == "__main__":
    main()
