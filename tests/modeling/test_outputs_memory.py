"""End-of-run outputs of a sharded model: no rank holds the whole model while writing.

Two gloo ranks hold a ~90 MB (fp32) Llama sharded with FSDP2 and write its outputs: a full
fine-tune as Hugging Face shards (10 MB each, split across the ranks) and in Meta's format,
and a LoRA run merged into a Meta base. Each rank's peak RSS above what it held just
before the write (its training footprint) is measured with psutil (a sampling thread,
and the kernel's exact high-water mark where Linux offers it). Large allocations are
forced onto ``mmap`` (``MALLOC_MMAP_THRESHOLD_``) so freed tensors leave RSS at once and
one write's freed memory cannot hide the next one's.
"""

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from modeling.checkpointing import FullModelHFCheckpointer, FullModelMetaCheckpointer
from modeling.checkpointing.writers import write_hf_state_dict
from modeling.convert import HeadDims, KeyMapper, MetaKeyMapper
from modeling.llama3 import llama3, lora_llama3
from modeling.peft import get_adapter_params, get_merged_state_dict, set_trainable_params
from modeling.sharding import load_owned_rows, materialize, shard_decoder
from tests.modeling.checkpoint_fixtures import build, model_type, saved_hf

psutil = pytest.importorskip("psutil")

MB = 2**20
SIZES = dict(
    vocab_size=4096,
    num_layers=6,
    num_heads=8,
    num_kv_heads=2,
    embed_dim=512,
    intermediate_dim=1536,
    max_seq_len=256,
)
LORA = dict(
    lora_attn_modules=["q_proj", "v_proj"], apply_lora_to_mlp=True, lora_rank=8, lora_alpha=16
)
SHARD = 10 * MB
# One-time costs that do not grow with the model (gloo buffers, file and thread set-up).
SLACK = 8 * MB
HF_CONFIG = dict(
    architectures=["LlamaForCausalLM"],
    model_type="llama",
    vocab_size=SIZES["vocab_size"],
    hidden_size=SIZES["embed_dim"],
    intermediate_size=SIZES["intermediate_dim"],
    num_hidden_layers=SIZES["num_layers"],
    num_attention_heads=SIZES["num_heads"],
    num_key_value_heads=SIZES["num_kv_heads"],
    max_position_embeddings=SIZES["max_seq_len"],
    rms_norm_eps=1e-5,
    rope_theta=500000.0,
    tie_word_embeddings=False,
)


class PeakRSS:
    """Peak RSS of this process while the block runs, above its RSS on entry."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.hwm = Path("/proc/self/clear_refs").exists()

    def __enter__(self) -> "PeakRSS":
        self.baseline = self.peak = self.process.memory_info().rss
        if self.hwm:
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.0005)

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)
        if self.hwm:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM"):
                    self.peak = max(self.peak, int(line.split()[1]) * 1024)
        self.extra = self.peak - self.baseline


def build_sharded(base: FullModelHFCheckpointer, lora: bool, adapters: dict):
    with torch.device("meta"):
        model = lora_llama3(**SIZES, **LORA) if lora else llama3(**SIZES)
    if lora:
        set_trainable_params(model, get_adapter_params(model))
    shard_decoder(model)
    materialize(model, "cpu")
    base.load_into(model, strict=True)
    if adapters:
        load_owned_rows(model, lambda k, s, e: adapters[k][s:e], adapters, strict=False)
    return model


def _worker(rank, port, hf_dir, meta_dir, out, adapters_path, result_path):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        torch.set_num_threads(1)
        hf = FullModelHFCheckpointer(hf_dir, model_type="llama3")
        meta = FullModelMetaCheckpointer(meta_dir, model_type="llama3")
        results = {}
        model = build_sharded(hf, lora=False, adapters={})
        dist.barrier()
        with PeakRSS() as peak:
            hf.write_outputs(model, Path(out) / "hf", rank=rank, max_shard_size=SHARD)
        results["hf_full"] = peak.extra
        dist.barrier()
        with PeakRSS() as peak:
            meta.write_outputs(model, Path(out) / "meta", rank=rank)
        results["meta_full"] = peak.extra
        del model
        adapters = torch.load(adapters_path, weights_only=True)
        model = build_sharded(hf, lora=True, adapters=adapters)
        dist.barrier()
        with PeakRSS() as peak:
            meta.write_outputs(model, Path(out) / "meta_lora", rank=rank, lora_config=dict(LORA))
        results["meta_lora"] = peak.extra
        (Path(result_path) / f"rank{rank}.json").write_text(json.dumps(results))
        dist.barrier()  # no rank tears gloo down while its peer still talks to it
    finally:
        dist.destroy_process_group()
    os._exit(0)  # skip C++ teardown, where gloo's threads can abort a finished rank


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The base checkpoints, the adapters, and both ranks' written outputs and peaks."""
    root = tmp_path_factory.mktemp("outputs")
    torch.manual_seed(0)
    model = llama3(**SIZES)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, 0.02) if param.dim() > 1 else param.normal_(1, 0.1)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    hf_dir, meta_dir = root / "hf-base", root / "meta-base"
    hf_dir.mkdir()
    (hf_dir / "config.json").write_text(json.dumps(HF_CONFIG))
    mapper = KeyMapper("llama3", HeadDims(SIZES["num_heads"], SIZES["num_kv_heads"], 64))
    write_hf_state_dict(hf_dir, state, mapper, 24 * MB)
    meta_dir.mkdir()
    meta_mapper = MetaKeyMapper("llama3")
    torch.save(
        dict(meta_mapper.to_meta(k, v) for k, v in state.items()), meta_dir / "consolidated.00.pth"
    )
    params = {"dim": 512, "n_layers": 6, "n_heads": 8, "n_kv_heads": 2, "vocab_size": 4096}
    (meta_dir / "params.json").write_text(json.dumps(params))

    lora = lora_llama3(**SIZES, **LORA)
    lora.load_state_dict(state, strict=False)
    generator = torch.Generator().manual_seed(1)
    adapters = {
        k: torch.randn(v.shape, generator=generator) * 0.05
        for k, v in get_adapter_params(lora).items()
    }
    lora.load_state_dict(adapters, strict=False)
    torch.save(adapters, root / "adapters.pt")
    merged = get_merged_state_dict(lora)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    previous = os.environ.get("MALLOC_MMAP_THRESHOLD_")
    os.environ["MALLOC_MMAP_THRESHOLD_"] = str(256 * 1024)  # read by each rank's malloc
    try:
        mp.start_processes(
            _worker,
            args=(port, hf_dir, meta_dir, root / "out", root / "adapters.pt", root),
            nprocs=2,
            join=True,
            start_method="spawn",
        )
    finally:
        if previous is None:
            del os.environ["MALLOC_MMAP_THRESHOLD_"]
        else:
            os.environ["MALLOC_MMAP_THRESHOLD_"] = previous
    peaks = [json.loads((root / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    model_bytes = sum(t.numel() * t.element_size() for t in state.values())
    largest = max(t.numel() * t.element_size() for t in state.values())
    return dict(
        out=root / "out",
        state=state,
        merged=merged,
        peaks=peaks,
        model=model_bytes,
        largest=largest,
    )


def test_full_finetune_hf_shards_split_across_ranks_hold_one_shard_plus_one_tensor(run):
    out = run["out"] / "hf" / "merged"
    shards = sorted(out.glob("model-*.safetensors"))
    assert len(shards) >= 8 and max(p.stat().st_size for p in shards) <= SHARD + MB
    assert run["model"] > 80 * MB and SHARD + 2 * run["largest"] + SLACK < run["model"] / 2
    for rank, peaks in enumerate(run["peaks"]):
        # one shard being filled plus the tensor being gathered; everything would be ~90 MB
        assert peaks["hf_full"] <= SHARD + run["largest"] + SLACK, (rank, peaks["hf_full"] / MB)
    written = FullModelHFCheckpointer(out, model_type="llama3").load_checkpoint()
    assert written.keys() == run["state"].keys()
    assert all(torch.equal(written[k], run["state"][k]) for k in written)
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == "float32"
    assert not list(out.parent.glob(".merged.*"))  # the staging directory was renamed in


def test_meta_outputs_are_written_tensor_by_tensor(run):
    for rank, peaks in enumerate(run["peaks"]):
        # A full fine-tune holds the tensor being gathered, which gloo's all-gather holds
        # twice for a moment (the ranks' chunks and their concatenation), on both ranks.
        # A merge (rank 0 alone) holds a base tensor and its merged weight, or a tensor
        # and the mapped pages it was read from (unmapped right after).
        assert peaks["meta_full"] <= 2 * run["largest"] + SLACK, (rank, peaks["meta_full"] / MB)
        assert peaks["meta_lora"] <= 2 * run["largest"] + SLACK, (rank, peaks["meta_lora"] / MB)
    full = torch.load(
        run["out"] / "meta" / "merged" / "consolidated.00.pth", weights_only=True, mmap=True
    )
    mapper = MetaKeyMapper("llama3")
    expected = dict(mapper.to_meta(k, v) for k, v in run["state"].items())
    assert list(full) == list(expected)
    assert all(torch.equal(full[k], expected[k]) for k in expected)
    merged = FullModelMetaCheckpointer(run["out"] / "meta_lora" / "merged").load_checkpoint()
    assert merged.keys() == run["merged"].keys()
    for key in merged:
        torch.testing.assert_close(merged[key], run["merged"][key], atol=1e-6, rtol=1e-5)
    assert (run["out"] / "meta_lora" / "adapter" / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize("family", ["llama3", "phi3", "gemma"])
def test_full_finetune_outputs_equal_save_checkpoint_byte_for_byte(family, tmp_path):
    """One process, plain tensors: the planned, gathered writer gives save_checkpoint's files
    (Phi-3's fused qkv/gate_up, Gemma's tied output written once)."""
    pytest.importorskip("transformers")
    _, directory = saved_hf(family, tmp_path / "hf", max_shard_size="60KB")
    ckpt = FullModelHFCheckpointer(
        directory, model_type=model_type(family), output_dir=tmp_path / "a"
    )
    model = build(family)
    model.load_state_dict(ckpt.load_checkpoint())
    saved = ckpt.save_checkpoint(model.state_dict(), max_shard_size="60KB")["merged"]
    written = ckpt.write_outputs(model, tmp_path / "b", rank=0, max_shard_size="60KB")["merged"]
    names = sorted(p.name for p in saved.iterdir())
    assert names == sorted(p.name for p in written.iterdir())
    assert sum(name.endswith(".safetensors") for name in names) > 2
    for name in names:
        assert (saved / name).read_bytes() == (written / name).read_bytes(), name
