"""Checkpoint load: peak RSS / model bytes and time / raw read time, ours vs transformers.

Each loader runs in a fresh process on a generated random ~2 GB Llama checkpoint
(float32, ~500 MB shards, in /tmp). Both read lazily (memory-mapped tensors), so each
run also sums every loaded tensor: the figures are for weights actually read, as training
reads them. torchtune is not installable offline here, so its
FullModelHFCheckpointer is not measured.

    python -m bench.ckpt_load [--dir /tmp/tunefleet-bench/llama-2g]
"""

import argparse
from pathlib import Path

from bench.ckpt_fixture import checkpoint, measure, raw_read_seconds

LOADERS = {
    "Tunefleet FullModelHFCheckpointer.load_checkpoint": (
        "from modeling.checkpointing import FullModelHFCheckpointer",
        "state = FullModelHFCheckpointer({d!r}).load_checkpoint()\n"
        "touched = sum(float(t.sum()) for t in state.values())",
    ),
    "transformers AutoModelForCausalLM.from_pretrained": (
        "import transformers",
        "model = transformers.AutoModelForCausalLM.from_pretrained({d!r}, dtype=torch.float32)\n"
        "touched = sum(float(p.sum()) for p in model.parameters())",
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/tunefleet-bench/llama-2g"))
    args = parser.parse_args()
    directory = checkpoint(args.dir)
    files = sorted(directory.glob("model-*.safetensors"))
    model_bytes = sum(p.stat().st_size for p in files)
    raw = raw_read_seconds(files)
    print(f"checkpoint {model_bytes / 1e9:.2f} GB in {len(files)} shards; raw read {raw:.2f} s")
    print("| loader | peak RSS above baseline / model bytes | time / raw read time |")
    print("| --- | --- | --- |")
    for name, (imports, body) in LOADERS.items():
        result = measure(imports, body.format(d=str(directory)))
        peak, seconds = result["peak"] / model_bytes, result["seconds"] / raw
        print(f"| {name} | {peak:.2f} | {seconds:.1f} ({result['seconds']:.2f} s) |")


if __name__ == "__main__":
    main()
