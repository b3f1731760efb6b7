"""The README's main job: the demo visibly learns, and its example prompt comes back right.

It runs the demo config as shipped (model size, steps, seed), through ``tune run --json``
as the README does, and checks the accuracy the run's summary reports: the share of the
demo's training prompts the tuned model answers exactly as trained with greedy decoding.
"""

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app

README_PROMPT = "What is the capital of Italy?"


@pytest.mark.slow
def test_the_demo_learns_its_training_prompts(tmp_path, ray_cluster):
    out, assets = tmp_path / "demo", tmp_path / "assets"
    run = ["run", "lora_finetune", "--config", "demo", f"output_dir={out}"]
    result = CliRunner().invoke(app, [*run, f"demo_assets={assets}", "--json"])
    assert result.exit_code == 0, result.output
    demo = json.loads(result.stdout)["demo"]

    train, heldout = demo["train"], demo["heldout"]
    assert train["total"] == 90
    assert train["accuracy"] >= 0.9, train["misses"]
    # Held-out word counts are measured and reported (about 85% when this was written);
    # the bound only catches a model that learned no rule at all.
    assert heldout["total"] == 40 and heldout["accuracy"] >= 0.5, heldout["misses"]

    italy = demo["comparisons"][0]
    assert italy == {
        "prompt": README_PROMPT,
        "base": italy["base"],
        "tuned": "The capital of Italy is Rome.",
    }
    assert italy["base"] != italy["tuned"]  # the base model does not know the format

    answer = CliRunner().invoke(
        app,
        ["generate", "--config", "demo", f"output_dir={out}", f"demo_assets={assets}"]
        + ["--prompt", README_PROMPT],
    )
    assert answer.exit_code == 0, answer.output
    assert answer.stdout.strip() == "The capital of Italy is Rome."

    compared = CliRunner().invoke(
        app,
        ["generate", "--config", "demo", f"output_dir={out}", f"demo_assets={assets}"]
        + ["--prompt", README_PROMPT, "--compare"],
    )
    assert compared.exit_code == 0, compared.output
    assert compared.stdout.splitlines() == [
        f"base:  {italy['base'].strip()}",
        "tuned: The capital of Italy is Rome.",
    ]


def test_demo_assets_are_remade_when_the_data_changes(tmp_path):
    from omegaconf import OmegaConf

    from orchestrator.config import load_config
    from orchestrator.demo_assets import ensure_demo_assets
    from tests.orchestrator.recipe_fixtures import TINY_MODEL

    cfg = load_config("demo", TINY_MODEL)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    data = tmp_path / "data.json"
    data.write_bytes(Path(cfg.dataset.source).read_bytes())
    assets = ensure_demo_assets(tmp_path / "assets", model, data)
    made = (assets / "model" / "model.safetensors").stat().st_mtime_ns
    ensure_demo_assets(assets, model, data)  # same data: reused as they are
    assert (assets / "model" / "model.safetensors").stat().st_mtime_ns == made
    rows = json.loads(data.read_text())
    data.write_text(json.dumps(rows + [{"input": "What is new?", "output": "This row."}]))
    ensure_demo_assets(assets, model, data)  # another data version: made again
    assert (assets / "model" / "model.safetensors").stat().st_mtime_ns != made
    assert json.loads((assets / "assets.json").read_text())["data_sha256"] == (
        hashlib.sha256(data.read_bytes()).hexdigest()
    )
