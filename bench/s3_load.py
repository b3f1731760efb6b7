"""Load a checkpoint from S3 into two FSDP ranks, and export a merged model with 1 and 2 ranks.

Everything runs against the S3 emulator (moto in server mode on 127.0.0.1, as the tests
use), so the figures measure our client side, not a network:

- load: two gloo ranks each build the model on ``meta``, shard it with FSDP2, allocate
  (first touch timed apart) and run ``FullModelHFCheckpointer("s3://...").load_into``,
  which fetches the header and then only the rows of that rank's shards. The reference
  replays exactly the byte ranges the two ranks asked for as a plain sequential loop of
  boto3 range GETs. moto serves every ranged GET by touching the whole object, so a GET
  costs about the object's size there: a loop of 64 MiB GETs over the files is printed
  too, for scale, but only the replay reads the same ranges.
- merged export: ``merge_adapter`` from the S3 base into ``s3://.../merged`` with 1 rank,
  then with 2 ranks each merging and uploading its own shards.

    python -m bench.s3_load [--dir /tmp/tunefleet-bench/llama-2g]
"""

import argparse
import json
import os
import socket
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from bench.ckpt_fixture import CONFIG, checkpoint
from modeling import storage
from modeling.checkpointing import FullModelHFCheckpointer, merge_adapter
from modeling.checkpointing.adapter import write_peft_adapter
from modeling.convert import HeadDims, KeyMapper
from modeling.llama3 import llama3
from modeling.sharding import materialize, shard_decoder
from tests.s3_server import S3Server

BUCKET = "bench"
CHUNK = 64 * 2**20


def model_on_meta():
    c = CONFIG
    with torch.device("meta"):
        return llama3(
            vocab_size=c["vocab_size"],
            num_layers=c["num_hidden_layers"],
            num_heads=c["num_attention_heads"],
            num_kv_heads=c["num_key_value_heads"],
            embed_dim=c["hidden_size"],
            intermediate_dim=c["intermediate_size"],
            max_seq_len=256,
        )


def range_get_loop(s3: S3Server, keys: list[str]) -> float:
    """Seconds to read every byte of ``keys`` with sequential 64 MiB range GETs."""
    client = s3.client()
    start = time.perf_counter()
    for key in keys:
        size = client.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
        for offset in range(0, size, CHUNK):
            end = min(offset + CHUNK, size) - 1
            client.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={offset}-{end}")["Body"].read()
    return time.perf_counter() - start


def replay(s3: S3Server, ranges: list[tuple[str, int, int]]) -> float:
    """Seconds to GET each ``(uri, offset, length)`` in turn with boto3."""
    client = s3.client()
    start = time.perf_counter()
    for uri, offset, length in ranges:
        key = uri.removeprefix(f"s3://{BUCKET}/")
        client.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={offset}-{offset + length - 1}")[
            "Body"
        ].read()
    return time.perf_counter() - start


def _load_rank(rank, port, env, result):
    import os

    from modeling.storage import RangeReader

    os.environ.update(env)
    asked = []
    read = RangeReader.read

    def recording_read(self, ranges):
        asked.extend((self.uri, offset, length) for offset, length in ranges)
        return read(self, ranges)

    RangeReader.read = recording_read
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    model = model_on_meta()
    shard_decoder(model)
    materialize(model, "cpu")
    for param in model.parameters():
        param.data.to_local().zero_()  # first touch, timed apart from the load
    dist.barrier()
    start = time.perf_counter()
    FullModelHFCheckpointer(f"s3://{BUCKET}/base").load_into(model)
    seconds = time.perf_counter() - start
    dist.barrier()
    torch.save((seconds, asked), f"{result}.{rank}")
    dist.destroy_process_group()


def _merge_rank(rank, port, env, adapter, world_size, result):
    import os

    os.environ.update(env)
    if world_size > 1:
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
        )
        dist.barrier()
    start = time.perf_counter()
    merge_adapter(
        f"s3://{BUCKET}/base",
        adapter,
        f"s3://{BUCKET}/merged-{world_size}",
        max_shard_size="500MB",
        rank=rank,
        world_size=world_size,
    )
    torch.save(time.perf_counter() - start, f"{result}.{rank}")
    if world_size > 1:
        dist.barrier()
        dist.destroy_process_group()


def spawn(fn, nprocs, *args) -> list:
    """What each rank of ``fn``, run in ``nprocs`` fresh processes, saved."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = tempfile.mktemp(prefix="tunefleet-bench-")
    mp.start_processes(fn, args=(port, *args, result), nprocs=nprocs, start_method="spawn")
    return [torch.load(f"{result}.{rank}") for rank in range(nprocs)]


def random_adapter(directory: Path) -> Path:
    """A rank-16 LoRA adapter on q/k/v/o, in PEFT's format, for the bench model."""
    c = CONFIG
    model = model_on_meta()
    adapters = {}
    for name, param in model.named_parameters():
        if name.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight", "output_proj.weight")):
            prefix = name.removesuffix("weight")
            adapters[prefix + "lora_a.weight"] = torch.randn(16, param.shape[1]) * 0.01
            adapters[prefix + "lora_b.weight"] = torch.randn(param.shape[0], 16) * 0.01
    heads = c["num_attention_heads"]
    mapper = KeyMapper("llama3", HeadDims(heads, c["num_key_value_heads"], 2048 // heads))
    config = {"lora_attn_modules": ["q_proj", "k_proj", "v_proj", "output_proj"]}
    write_peft_adapter(
        directory, adapters, {**config, "lora_rank": 16, "lora_alpha": 32}, mapper, ""
    )
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/tunefleet-bench/llama-2g"))
    args = parser.parse_args()
    directory = checkpoint(args.dir)
    os.environ["TUNEFLEET_S3_BACKGROUND_WRITES"] = "0"  # moto takes one part at a time
    with S3Server() as s3, s3.environment():
        s3.create_bucket(BUCKET)
        # moto's multipart uploads are not thread-safe: upload the fixture one file at a time
        storage.upload_dir(directory, f"s3://{BUCKET}/base", max_workers=1)
        env = {k: v for k, v in s3.env().items() if v is not None}
        keys = [f"base/{p.name}" for p in sorted(directory.glob("*.safetensors"))]
        gb = sum(p.stat().st_size for p in directory.glob("*.safetensors")) / 1e9
        loop = range_get_loop(s3, keys)
        ranks = spawn(_load_rank, 2, env)
        load = max(seconds for seconds, _ in ranks)
        asked = [r for _, rank_ranges in ranks for r in rank_ranges]
        again = replay(s3, asked)
        read_gb = sum(length for _, _, length in asked) / 1e9
        print(f"{gb:.2f} GB checkpoint on the S3 emulator")
        print(f"for scale: 64 MiB range GETs over the files, sequential: {loop:.2f} s")
        print(
            f"2-rank FSDP load_into from s3://: {load:.2f} s, reading {read_gb:.2f} GB in "
            f"{len(asked)} ranges; the same ranges as a plain boto3 loop: {again:.2f} s; "
            f"ratio {load / again:.2f}"
        )
        adapter = random_adapter(Path(tempfile.mkdtemp(prefix="tunefleet-adapter-")))
        one = max(spawn(_merge_rank, 1, env, str(adapter), 1))
        two = max(spawn(_merge_rank, 2, env, str(adapter), 2))
        shards = storage.list_files(f"s3://{BUCKET}/merged-2")
        print(json.dumps({"merged_files": sorted(shards)}))
        print(f"merged export to s3://: 1 rank {one:.2f} s, 2 ranks {two:.2f} s ({one / two:.2f}x)")


if __name__ == "__main__":
    main()
