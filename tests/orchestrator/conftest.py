"""One Ray cluster for the whole test session (started on first use)."""

import logging
import uuid
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def ray_cluster():
    """A local 2-CPU Ray instance shared by every integration test."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(
            num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False
        )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def demo_assets_dir(tmp_path_factory):
    """The tiny demo checkpoint and tokenizer (sizes of ``TINY_MODEL``), made once."""
    from tests.orchestrator.recipe_fixtures import demo_config

    assets = tmp_path_factory.mktemp("demo-assets")
    demo_config(assets, tmp_path_factory.mktemp("unused"))
    return assets


@pytest.fixture
def demo_bucket(s3, demo_assets_dir):
    """A fresh bucket holding the demo's base model, tokenizer and data, and nothing else."""
    from orchestrator.datasets import sources

    name = f"run-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(name)
    for path in (demo_assets_dir / "model").iterdir():
        s3.put(f"{name}/base/{path.name}", path.read_bytes())
    s3.put(f"{name}/base/tokenizer.model", (demo_assets_dir / "tokenizer.model").read_bytes())
    data = Path(sources.__file__).parent.parent / "data" / "demo_instructions.json"
    s3.put(f"{name}/data/demo.json", data.read_bytes())
    return name
