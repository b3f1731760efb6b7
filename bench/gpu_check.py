"""One prepared GPU check of the recipe, in-process on one rank, printing a JSON summary.

It needs PyTorch and the Hugging Face libraries only (no Ray): the recipe function runs
in this process with a one-rank NCCL process group (gloo on CPU), the way each Ray Train
worker runs it. On a CUDA machine (about 4 minutes on one H200) it checks:

- NF4 quantisation on CUDA equals the CPU's byte for byte (and its dequantise time);
- LoRA, QLoRA, DoRA and full fine-tunes of a random ~1B Llama in bf16 with FSDP2 learn
  (the loss falls on repeated data) and resume (a run resumed from its step-3 checkpoint
  logs the uninterrupted run's later losses; LoRA and DoRA with dropout, so that needs
  the CUDA RNG state restored);
- ``compile=True`` matches eager;
- packed batches: flex_attention's BlockMask gives the dense mask's logits and gradients,
  and a packed LoRA run learns;
- ``fsdp_cpu_offload=True`` logs the losses of LoRA and QLoRA runs without it;
- tokens/s and MFU for LoRA at 4 x 2048 tokens, next to transformers + PEFT on the same
  weights and GPU;
- the peak memory of that run next to ``tune plan --gpu h200``.

Each check runs on its own: an exception or a false verdict is recorded in the summary
(``failed`` lists them), the next check still runs, and the exit status is 1 if any
failed. ``--out`` is rewritten after every check, so a run cut short keeps what it did;
``--only`` reruns named checks. Without CUDA it runs the same checks on a tiny model in
float32 on the CPU, skipping what needs CUDA, so CI proves that every path it drives works:

    python bench/gpu_check.py [--out gpu_check.json] [--skip-throughput] [--only packed,...]

Omegaconf, if the machine lacks it, travels as wheels (see DEVELOPERS.md); NF4 is plain
PyTorch, so QLoRA needs nothing more.
"""

import argparse
import json
import os
import random
import shutil
import socket
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# (layers, dim, heads, kv heads, mlp, vocab): ~1.1B parameters on GPU, tiny on CPU.
GPU_SIZES = (16, 2048, 32, 8, 8192, 32_768)
CPU_SIZES = (2, 64, 4, 2, 128, 1_024)
LORA = [
    "model.lora_attn_modules=[q_proj,k_proj,v_proj,output_proj]",
    "model.apply_lora_to_mlp=True",
]
FULL = [
    "model._component_=modeling.llama3.llama3",
    *[f"~model.{k}" for k in ("lora_attn_modules", "apply_lora_to_mlp", "apply_lora_to_output")],
    *[f"~model.{k}" for k in ("lora_rank", "lora_alpha", "lora_dropout")],
    "optimizer.lr=2e-5",
]
DROPOUT = "model.lora_dropout=0.1"  # resuming then also needs the (CUDA) RNG state back
QLORA = [*LORA, "+model.quantize_base=True"]
METHODS = {
    "lora": [*LORA, DROPOUT],
    "qlora": QLORA,
    "dora": [*LORA, "+model.use_dora=True", DROPOUT],
    "full": FULL,
}
H200_BF16_PEAK = 989e12  # dense bf16 FLOP/s, NVIDIA's datasheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the summary here (after each check)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument(
        "--only", help="comma-separated check names to run (e.g. methods.qlora,packed)"
    )
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", 0) if cuda else torch.device("cpu")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="tunefleet-gpu-check-"))
    started = time.perf_counter()
    summary: dict = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "torch": torch.__version__,
        "failed": [],
    }
    sizes = GPU_SIZES if cuda else CPU_SIZES
    _init_process_group(device)
    try:
        assets = make_assets(work / "assets", sizes, seq=2048 if cuda else 128, device=device)
        for name, check in _checks(assets, work, device, sizes, args).items():
            _record(summary, name, _guarded(name, check, summary, work))
            summary["wall_s"] = round(time.perf_counter() - started, 1)
            if args.out:
                args.out.write_text(json.dumps(summary, indent=2) + "\n")
    finally:
        dist.destroy_process_group()
    print(json.dumps(summary, indent=2))
    if summary["failed"]:
        sys.exit(f"gpu_check: failed: {', '.join(summary['failed'])}")


def _checks(assets: dict, work: Path, device: torch.device, sizes: tuple, args) -> dict:
    """The checks, by summary key, in the order they run; each gets its own scratch folder."""
    baselines = EagerBaselines(assets, work, device, sizes)
    checks = {
        "nf4_cuda_equals_cpu": lambda _: check_nf4(device.type == "cuda"),
        **{
            f"methods.{m}": lambda scratch, m=m: check_method(m, assets, scratch, device, sizes)
            for m in METHODS
        },
        "compile": lambda scratch: check_variant(
            assets, scratch, device, sizes, baselines, "compile=True", cpu_tolerance=1e-4
        ),
        "packed": lambda scratch: check_packed(assets, scratch, device, sizes),
        "offload": lambda scratch: check_variant(
            assets, scratch, device, sizes, baselines, "fsdp_cpu_offload=True", cpu_tolerance=1e-5
        ),
    }
    if not args.skip_throughput:
        checks["throughput"] = lambda scratch: check_throughput(assets, scratch, device, sizes)
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - set(checks))
        if unknown:
            sys.exit(f"--only: unknown check {', '.join(unknown)}; checks: {', '.join(checks)}")
        checks = {name: checks[name] for name in wanted}
    return checks


def _guarded(name: str, check, summary: dict, work: Path) -> dict:
    """Run one check; an exception or a false verdict is recorded, and the next check runs.

    A verdict is any boolean in the result (``learns``, ``matches``, ...): one that is
    False marks the check failed, so one run on a GPU reports every problem at once. The
    check's scratch folder (checkpoints, outputs: tens of GB for the ~1B full fine-tune)
    is removed afterwards, so the checks fit a small disk one after another.
    """
    scratch = work / name
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        result = check(scratch)
    except Exception as error:  # noqa: BLE001 - reported in the summary, then go on
        result = {
            "error": f"{type(error).__name__}: {error}"[:2000],
            "traceback": traceback.format_exc().splitlines()[-12:],
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    if "error" in result or _false_verdicts(result):
        summary["failed"].append(name)
    return result


def _false_verdicts(result) -> bool:
    if isinstance(result, dict):
        return any(v is False or _false_verdicts(v) for v in result.values())
    return False


def _record(summary: dict, name: str, result: dict) -> None:
    """``summary[name] = result``, a dotted name nesting (``methods.lora``)."""
    *parents, leaf = name.split(".")
    node = summary
    for parent in parents:
        node = node.setdefault(parent, {})
    node[leaf] = result


def _init_process_group(device: torch.device) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)


def make_assets(root: Path, sizes: tuple, seq: int, device: torch.device) -> dict:
    """A random Llama checkpoint (transformers), a byte-level tokenizer, long samples."""
    import base64

    import transformers

    layers, dim, heads, kv_heads, mlp, vocab = sizes
    model_dir = root / "model"
    if not (model_dir / "config.json").exists():
        config = transformers.LlamaConfig(
            vocab_size=vocab,
            hidden_size=dim,
            intermediate_size=mlp,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=kv_heads,
            max_position_embeddings=seq,
            rope_theta=500_000.0,
            tie_word_embeddings=False,
        )
        torch.manual_seed(0)
        with torch.device(device):
            hf = transformers.LlamaForCausalLM(config)
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        hf.to(dtype).save_pretrained(model_dir, safe_serialization=True)
        del hf
    tokenizer = root / "tokenizer.model"  # 256 byte ranks: one token per character
    tokenizer.write_text(
        "".join(f"{base64.b64encode(bytes([b])).decode()} {b}\n" for b in range(256))
    )
    rng = random.Random(0)
    words = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 8))) for _ in range(200)
    ]
    rows = [
        {
            "instruction": " ".join(rng.choices(words, k=20)),
            "input": "",
            "output": " ".join(rng.choices(words, k=seq // 3)),
        }
        for _ in range(8)
    ]
    data = root / "data.json"
    data.write_text(json.dumps(rows))
    short_data = root / "short.txt"  # lines of about seq / 4 tokens: several per pack
    short_data.write_text(
        "\n".join(" ".join(rng.choices(words, k=max(2, seq // 24))) for _ in range(64))
    )
    return {
        "model": model_dir,
        "tokenizer": tokenizer,
        "data": data,
        "short_data": short_data,
        "seq": seq,
    }


def config(assets: dict, out: Path, sizes: tuple, *overrides: str, seq: int = 512, batch: int = 2):
    """The shipped llama3/8B_lora config, pointed at the assets and resized."""
    from orchestrator.config import load_config

    layers, dim, heads, kv_heads, mlp, vocab = sizes
    return load_config(
        "llama3/8B_lora",
        [
            f"output_dir={out}",
            f"checkpointer.checkpoint_dir={assets['model']}",
            f"tokenizer.path={assets['tokenizer']}",
            f"tokenizer.max_seq_len={seq}",
            "dataset._component_=orchestrator.datasets.alpaca_dataset",
            f"+dataset.source={assets['data']}",
            "+dataset.train_on_input=True",
            "model._component_=modeling.llama3.lora_llama3",
            f"+model.vocab_size={vocab}",
            f"+model.num_layers={layers}",
            f"+model.num_heads={heads}",
            f"+model.num_kv_heads={kv_heads}",
            f"+model.embed_dim={dim}",
            f"+model.intermediate_dim={mlp}",
            f"+model.max_seq_len={assets['seq']}",
            f"batch_size={batch}",
            "gradient_accumulation_steps=1",
            "epochs=100",
            "max_steps_per_epoch=1",
            "shuffle=False",
            "optimizer.lr=1e-3",
            "lr_scheduler.num_warmup_steps=0",
            "save_every_n_steps=3",
            "seed=0",
            *overrides,
        ],
    )


def run(cfg, checkpoint_root: Path, device: torch.device, steps: int) -> list[dict]:
    """The recipe in this process for ``steps`` steps; its logged metrics, one per step."""
    from omegaconf import OmegaConf

    from orchestrator.recipes.finetune import finetune
    from orchestrator.training.metric_logger import read_metrics
    from orchestrator.training.session import LocalSession

    cfg = OmegaConf.merge(cfg, {"epochs": steps})  # one step per epoch, the same batch
    finetune(cfg, LocalSession(checkpoint_root=checkpoint_root, device=device, keep=10))
    return read_metrics(Path(cfg.output_dir) / "metrics.jsonl")


COMPARED = {"lora": LORA, "qlora": QLORA}  # the methods compile and offload are checked on
COMPARED_STEPS = 4


class EagerBaselines:
    """The plain runs (eager, no offload) that the compile and offload checks compare with.

    Each method's run is made once, on first use, and its losses kept; its outputs are
    deleted at once (a merged ~1B model is 2.2 GB).
    """

    def __init__(self, assets: dict, work: Path, device: torch.device, sizes: tuple) -> None:
        self.assets, self.work, self.device, self.sizes = assets, work, device, sizes
        self.losses: dict[str, list[float]] = {}

    def __call__(self, method: str) -> list[float]:
        """The losses of ``method``'s plain run, ``COMPARED_STEPS`` steps."""
        if method not in self.losses:
            out = self.work / f"baseline-{method}"
            cfg = config(self.assets, out, self.sizes, *COMPARED[method], "save_every_n_steps=null")
            try:
                metrics = run(cfg, out / "ckpt", self.device, COMPARED_STEPS)
            finally:
                shutil.rmtree(out, ignore_errors=True)
            self.losses[method] = [m["loss"] for m in metrics]
        return self.losses[method]


def _variant_losses(assets, work: Path, device, sizes, method: str, override: str) -> list:
    """The losses of ``method`` run with one more override, ``COMPARED_STEPS`` steps."""
    overrides = [*COMPARED[method], "save_every_n_steps=null", override]
    metrics = run(
        config(assets, work / method, sizes, *overrides),
        work / method / "ckpt",
        device,
        COMPARED_STEPS,
    )
    return [m["loss"] for m in metrics]


def check_nf4(cuda: bool) -> dict:
    """NF4 packing of the same weights on both devices, byte for byte; CUDA dequantise time."""
    if not cuda:
        return {"skipped": "no CUDA"}
    from modeling.peft.nf4 import NF4Weight

    torch.manual_seed(0)
    results = {}
    for shape in ((4096, 4096), (1000, 1000), (8192, 28672)):
        weight = torch.randn(shape, dtype=torch.bfloat16)
        stored = {}
        for device in ("cpu", "cuda"):
            nf4 = NF4Weight(*shape, dtype=torch.bfloat16, device=device)
            nf4.quantize_(weight.to(device))
            stored[device] = nf4
        cpu, gpu = stored["cpu"], stored["cuda"]
        results["x".join(map(str, shape))] = (
            torch.equal(cpu.packed, gpu.packed.cpu())
            and torch.equal(cpu.absmax, gpu.absmax.cpu())
            and torch.equal(cpu.dequantize(), gpu.dequantize().cpu())
        )
    gpu.dequantize()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        gpu.dequantize()
    torch.cuda.synchronize()
    results["dequantize_8192x28672_ms"] = round((time.perf_counter() - start) * 100, 2)
    return results


def check_method(method: str, assets: dict, work: Path, device, sizes) -> dict:
    """The method learns on a repeated batch and resumes exactly from its step-3 checkpoint."""
    cfg = config(assets, work / "straight", sizes, *METHODS[method])
    straight = run(cfg, work / "ckpt", device, steps=6)
    resumed_ckpt = work / "ckpt-resumed"
    resumed_ckpt.mkdir(parents=True)
    # Moved, not copied: the ~1B full fine-tune's train state is over 10 GB.
    (work / "ckpt" / "checkpoint_000003").rename(resumed_ckpt / "checkpoint_000003")
    resumed = run(
        config(assets, work / "resumed", sizes, *METHODS[method]), resumed_ckpt, device, 6
    )
    losses = [m["loss"] for m in straight]
    after = {m["step"]: m["loss"] for m in resumed if m["step"] > 3}
    gap = max(abs(after[m["step"]] - m["loss"]) for m in straight if m["step"] > 3)
    return {
        "losses": [round(x, 4) for x in losses],
        "learns": losses[-1] < losses[0],
        "resume_max_loss_gap": gap,
        "resumes": gap <= 1e-3 * max(1.0, abs(losses[-1])),
        "peak_memory_gib": round(max(m["peak_memory_gib"] or 0 for m in straight), 2),
    }


def check_variant(
    assets: dict, work: Path, device, sizes, baselines, override: str, cpu_tolerance: float
) -> dict:
    """LoRA and QLoRA with ``override`` log the plain runs' losses (bf16 tolerance on GPU).

    ``compile=True`` must match eager, and ``fsdp_cpu_offload=True`` the run without it.
    """
    return {
        method: _same_losses(
            baselines(method),
            _variant_losses(assets, work, device, sizes, method, override),
            device,
            cpu_tolerance,
        )
        for method in COMPARED
    }


def _same_losses(reference: list, other: list, device, cpu_tolerance: float) -> dict:
    """The verdict on two runs' loss curves: within bf16 noise on GPU, ``cpu_tolerance`` on CPU."""
    gap = max(abs(a - b) for a, b in zip(reference, other, strict=True))
    tolerance = 2e-2 if device.type == "cuda" else cpu_tolerance
    return {
        "losses": [round(x, 4) for x in other],
        "max_loss_gap": gap,
        "matches": gap <= tolerance * max(1.0, abs(reference[0])),
    }


def check_packed(assets: dict, work: Path, device, sizes) -> dict:
    """Packed batches: flex_attention's BlockMask equals the dense mask (CUDA); LoRA learns.

    On CUDA the BlockMask path (compiled flex_attention) and the dense additive mask give
    the same logits and gradients on one packed batch of a small float32 model; on every
    device a packed LoRA run of the recipe learns, on text samples of about a quarter of
    the sequence, so each pack holds several documents (``documents_per_pack``).
    """
    result = {}
    if device.type == "cuda":
        result["flex_equals_dense"] = _flex_against_dense(device)
    seq = assets["seq"]
    metrics = run(
        config(
            assets,
            work / "packed",
            sizes,
            *LORA,
            "save_every_n_steps=null",
            "dataset._component_=orchestrator.datasets.text_completion_dataset",
            f"dataset.source={assets['short_data']}",
            "~dataset.train_on_input",
            "dataset.packed=True",
            seq=seq,
        ),
        work / "packed-ckpt",
        device,
        4,
    )
    losses = [m["loss"] for m in metrics]
    lines = assets["short_data"].read_text().splitlines()
    document = sum(len(line) + 2 for line in lines) / len(lines)  # bytes, BOS and EOS
    result.update(
        documents_per_pack=round(seq / document, 1),
        losses=[round(x, 4) for x in losses],
        learns=losses[-1] < losses[0],
    )
    return result


def _flex_against_dense(device: torch.device) -> dict:
    from modeling.llama3 import llama3
    from modeling.modules.attention_masks import (
        block_causal_additive_mask,
        block_causal_block_mask,
    )

    torch.manual_seed(0)
    model = llama3(
        vocab_size=1024,
        num_layers=2,
        num_heads=8,
        num_kv_heads=2,
        embed_dim=512,
        intermediate_dim=1024,
        max_seq_len=2048,
    ).to(device)
    batch, seq = 2, 1024
    lengths = [[300, 500, 224], [1000, 24]]  # documents per pack, each summing to seq
    document_ids = torch.cat(
        [
            torch.repeat_interleave(torch.arange(len(row)), torch.tensor(row))[None]
            for row in lengths
        ]
    ).to(device)
    input_pos = torch.cat([torch.cat([torch.arange(n) for n in row])[None] for row in lengths]).to(
        device
    )
    tokens = torch.randint(0, 1024, (batch, seq), device=device)
    outputs = {}
    for name, mask in (
        ("flex", block_causal_block_mask(document_ids)),
        ("dense", block_causal_additive_mask(document_ids)),
    ):
        model.zero_grad(set_to_none=True)
        logits = model(tokens, mask=mask, input_pos=input_pos)
        logits.float().logsumexp(-1).mean().backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters()])
        outputs[name] = (logits.detach(), grads)
    (flex_logits, flex_grads), (dense_logits, dense_grads) = outputs["flex"], outputs["dense"]
    logits_gap = (flex_logits - dense_logits).abs().max().item()
    grad_gap = ((flex_grads - dense_grads).norm() / dense_grads.norm()).item()
    return {
        "max_logits_gap": logits_gap,
        "relative_grad_gap": grad_gap,
        "matches": logits_gap <= 1e-3 * max(1.0, dense_logits.abs().max().item())
        and grad_gap <= 1e-3,
    }


def check_throughput(assets: dict, work: Path, device, sizes) -> dict:
    """LoRA at 4 x seq tokens: our tokens/s and MFU, transformers + PEFT's, and memory."""
    from orchestrator.planning.planner import plan_memory

    seq = assets["seq"]
    cfg = config(
        assets,
        work / "speed",
        sizes,
        *LORA,
        "save_every_n_steps=null",
        "enable_activation_checkpointing=False",
        seq=seq,
        batch=4,
    )
    steps = 12 if device.type == "cuda" else 3
    metrics = run(cfg, work / "speed-ckpt", device, steps)
    ours = sorted(m["tokens_per_second"] for m in metrics[2:])[len(metrics[2:]) // 2]
    theirs = _peft_tokens_per_second(assets, device, seq, steps)
    flops_per_token = _lora_flops_per_token(sizes, seq)
    gpu = "h200" if device.type == "cuda" else "cpu"
    plan = plan_memory(cfg, nodes=1, gpus_per_node=1, gpu=gpu)
    peak = max(m["peak_memory_gib"] or 0 for m in metrics)
    result = {
        "tokens": f"4x{seq}",
        "tunefleet_tokens_per_second": round(ours, 1),
        "transformers_peft_tokens_per_second": round(theirs, 1),
        "ratio": round(ours / theirs, 3),
        "peak_memory_gib": round(peak, 2),
        "tune_plan_gib": round(plan.total(False) / 2**30, 2),
    }
    if device.type == "cuda":
        result["tunefleet_mfu"] = round(ours * flops_per_token / H200_BF16_PEAK, 4)
        result["transformers_peft_mfu"] = round(theirs * flops_per_token / H200_BF16_PEAK, 4)
    return result


def _lora_flops_per_token(sizes: tuple, seq: int) -> float:
    """4 x frozen matmul params (no weight gradient) plus attention, per token."""
    layers, dim, heads, kv_heads, mlp, vocab = sizes
    head_dim = dim // heads
    per_layer = dim * dim * 2 + 2 * dim * kv_heads * head_dim + 3 * dim * mlp
    frozen = layers * per_layer + vocab * dim
    # QK^T and AV, 2*seq*dim FLOPs each per token, counted in full as PaLM's MFU does (a
    # causal kernel skips about half); x3 below for forward and backward.
    attention = layers * 2 * 2 * seq * dim
    return 4 * frozen + 3 * attention


def _peft_tokens_per_second(assets: dict, device, seq: int, steps: int) -> float:
    """Transformers' LlamaForCausalLM with PEFT LoRA (same targets, rank 8), same batch shape."""
    import peft
    import transformers

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = transformers.LlamaForCausalLM.from_pretrained(
        assets["model"], torch_dtype=dtype, attn_implementation="sdpa"
    ).to(device)
    lora = peft.LoraConfig(
        r=8,
        lora_alpha=16,
        target_modules=[
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ],
    )
    model = peft.get_peft_model(model, lora)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    tokens = torch.randint(0, 256, (4, seq), device=device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model(input_ids=tokens, labels=tokens).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    del model, optimizer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    steady = sorted(times[2:] or times)
    return tokens.numel() / steady[len(steady) // 2]


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
