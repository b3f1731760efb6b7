"""One Ray cluster for the whole test session (started on first use)."""

import logging

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
