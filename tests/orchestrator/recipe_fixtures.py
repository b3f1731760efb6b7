"""Tiny configs for recipe tests: the demo config pointed at per-test directories."""

import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import torch
from omegaconf import OmegaConf

from orchestrator.config import load_config
from orchestrator.demo_assets import ensure_demo_assets
from orchestrator.training.metric_logger import read_metrics

# The demo's LoRA settings on a still smaller Llama 3 than llama3_tiny (one layer, width
# 64), written out through the generic builder, so recipe tests run in seconds.
TINY_MODEL = [
    "epochs=1",
    "model._component_=modeling.llama3.lora_llama3",
    "model.vocab_size=768",
    "model.num_layers=1",
    "model.num_heads=4",
    "model.num_kv_heads=2",
    "model.embed_dim=64",
    "model.intermediate_dim=128",
    "model.max_seq_len=256",
    "tokenizer.max_seq_len=256",
]

# The demo config turned into a full fine-tune: the plain builder, no LoRA keywords.
FULL_FINETUNE = [
    "model._component_=modeling.llama3.llama3",
    *[
        f"~model.{key}"
        for key in ("lora_attn_modules", "apply_lora_to_mlp", "apply_lora_to_output")
    ],
    *[f"~model.{key}" for key in ("lora_rank", "lora_alpha", "lora_dropout")],
]


def demo_config(assets: Path, output_dir: Path, *overrides: str):
    """The demo config with small sizes and short runs, its assets generated once."""
    cfg = load_config(
        "demo",
        [
            f"output_dir={output_dir}",
            f"demo_assets={assets}",
            "max_steps_per_epoch=8",
            "save_every_n_steps=4",
            *TINY_MODEL,
            *overrides,
        ],
    )
    ensure_demo_assets(assets, OmegaConf.to_container(cfg.model, resolve=True), cfg.dataset.source)
    return cfg


def uri_overrides(checkpoint, tokenizer, data, output, *extra: str) -> list[str]:
    """The demo config (TINY_MODEL sizes) with its inputs and output named explicitly."""
    return [
        f"output_dir={output}",
        "demo_assets=null",
        f"checkpointer.checkpoint_dir={checkpoint}",
        f"tokenizer.path={tokenizer}",
        f"dataset.source={data}",
        *TINY_MODEL,
        *extra,
    ]


def s3_overrides(bucket: str, *extra: str, out: str = "out") -> list[str]:
    """Demo overrides naming only ``s3://bucket`` URIs (see the ``demo_bucket`` fixture)."""
    root = f"s3://{bucket}"
    return uri_overrides(
        f"{root}/base",
        f"{root}/base/tokenizer.model",
        f"{root}/data/demo.json",
        f"{root}/{out}",
        f"storage={root}/ray",
        *extra,
    )


def kill_a_worker_once_past(metrics, step, killed, poll_s=0.02):
    """Watch ``metrics`` (a path or URI) and SIGKILL one Ray Train worker once ``step`` is in it."""
    deadline = time.time() + 240
    while time.time() < deadline and not killed:
        steps = [record["step"] for record in read_metrics(metrics)]
        if steps and steps[-1] >= step:
            for proc in psutil.process_iter(["cmdline"]):
                if "RayTrainWorker" in " ".join(proc.info["cmdline"] or []):
                    proc.kill()  # SIGKILL
                    killed.append(proc.pid)
                    break
        time.sleep(poll_s)


@dataclass
class GlooSession:
    """One rank of a two-process run on this machine, without checkpoints."""

    rank: int
    world_size: int = 2
    node_id: str = "this-host"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def report(self, metrics, checkpoint_dir=None):
        pass

    def latest_checkpoint(self):
        return None

    def progress(self, metrics):
        pass
