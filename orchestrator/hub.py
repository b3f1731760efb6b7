"""Where the Hugging Face Hub and its cache are, read from the environment at call time.

``huggingface_hub`` reads ``HF_ENDPOINT``, ``HF_HOME`` and ``HF_HUB_CACHE`` once, when it is
first imported. A process that sets them later (a test, a Ray worker given a runtime
environment, a notebook) would silently keep talking to the old endpoint and cache, so every
place here that calls the Hub passes these values explicitly instead.
"""

import os

DEFAULT_ENDPOINT = "https://huggingface.co"


def hub_endpoint() -> str | None:
    """``HF_ENDPOINT`` as set now (huggingface_hub reads it only once, at import)."""
    return os.environ.get("HF_ENDPOINT") or None


def hub_endpoint_name() -> str:
    """The endpoint requests go to, for error messages: ``HF_ENDPOINT`` or the public Hub."""
    return hub_endpoint() or DEFAULT_ENDPOINT


def hub_cache_dir() -> str | None:
    """``HF_HUB_CACHE``, else ``HF_HOME/hub``, as set now; None for the library default."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return None
