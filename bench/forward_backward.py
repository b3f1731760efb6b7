"""Forward+backward tokens/s of a small Llama 3: ours next to transformers' Llama.

Both models have identical sizes and identical weights (ours is loaded from the
transformers model through the production key map), run in float32 on the CPU with the
same batch, and are timed alternately so machine noise hits both alike.

    python -m bench.forward_backward [--layers 4 --dim 512 --seq 512 --batch 4 --iters 6]
"""

import argparse
import statistics
import time

import torch
import transformers

from bench.small_llama import add_size_args, hf_model, our_state_dict, sizes
from modeling.llama3 import llama3


def step_time(model, tokens, hf: bool) -> float:
    start = time.perf_counter()
    out = model(tokens)
    logits = out.logits if hf else out
    logits.float().pow(2).mean().backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_args(parser)
    parser.add_argument("--iters", type=int, default=6)
    args = parser.parse_args()

    theirs = hf_model(args).train()
    ours = llama3(**sizes(args)).train()
    ours.load_state_dict(our_state_dict(theirs))
    tokens = torch.randint(0, args.vocab, (args.batch, args.seq))

    times = {"ours": [], "transformers": []}
    for i in range(args.iters + 1):  # the first round warms up and is dropped
        for name, model in (("ours", ours), ("transformers", theirs)):
            elapsed = step_time(model, tokens, hf=name == "transformers")
            if i:
                times[name].append(elapsed)
    tokens_per_step = args.batch * args.seq
    rates = {name: tokens_per_step / statistics.median(t) for name, t in times.items()}
    params = sum(p.numel() for p in ours.parameters())
    print(
        f"llama3 {params / 1e6:.1f}M params, batch {args.batch} x seq {args.seq}, "
        f"float32, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"transformers {transformers.__version__}"
    )
    for name, rate in rates.items():
        print(f"{name:>13}: {rate:8.0f} tokens/s (median of {args.iters})")
    print(f"ratio ours/transformers: {rates['ours'] / rates['transformers']:.2f}")


if __name__ == "__main__":
    main()
