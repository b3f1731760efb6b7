"""Time to load an HF checkpoint into a model's (already allocated) parameters.

The recipe's path: build on ``meta``, allocate, then ``checkpointer.load_into(model)``,
the one owned-rows loop (each rank reads only its rows; one rank here, so all of them).
Allocation is timed apart: touching freshly allocated memory for the
first time (page faults) costs the same whichever loader fills it, so each loader is timed
on memory already touched once. The raw read is a plain sequential read of the files.

    python -m bench.load_into_model [--dir /tmp/tunefleet-bench/llama-2g]
"""

import argparse
import json
import time
from pathlib import Path

import torch

from bench.ckpt_fixture import checkpoint, raw_read_seconds
from modeling.checkpointing import FullModelHFCheckpointer
from modeling.llama3 import llama3
from modeling.sharding import materialize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/tunefleet-bench/llama-2g"))
    args = parser.parse_args()
    directory = checkpoint(args.dir)
    c = json.loads((directory / "config.json").read_text())
    with torch.device("meta"):
        model = llama3(
            vocab_size=c["vocab_size"],
            num_layers=c["num_hidden_layers"],
            num_heads=c["num_attention_heads"],
            num_kv_heads=c["num_key_value_heads"],
            embed_dim=c["hidden_size"],
            intermediate_dim=c["intermediate_size"],
            max_seq_len=256,
        )
    materialize(model, "cpu")
    start = time.perf_counter()
    for param in model.parameters():
        param.data.zero_()  # first touch of every page
    first_touch = time.perf_counter() - start
    ckpt = FullModelHFCheckpointer(directory)
    raw = raw_read_seconds(sorted(directory.glob("model-*.safetensors")))

    gb = sum(p.numel() * p.element_size() for p in model.parameters()) / 1e9
    print(
        f"{gb:.2f} GB of parameters; raw read {raw:.2f} s; first touch of the allocated "
        f"memory {first_touch:.2f} s"
    )
    times = []
    for _ in range(3):
        start = time.perf_counter()
        ckpt.load_into(model)
        times.append(time.perf_counter() - start)
    best = min(times)
    print(f"checkpointer.load_into: {best:.2f} s = {best / raw:.2f} x raw read (best of 3)")


if __name__ == "__main__":
    main()
