"""Fetching dataset repos from the Hugging Face Hub (or a mirror at ``HF_ENDPOINT``)."""

from pathlib import Path

from orchestrator.hub import DEFAULT_ENDPOINT, hub_cache_dir, hub_endpoint

__all__ = ["download_dataset_repo", "hub_cache_dir", "hub_endpoint"]


def download_dataset_repo(
    repo_id: str,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | None = None,
    allow_patterns: list[str] | None = None,
) -> Path:
    """Download (or reuse from the cache) a dataset repo's files; returns the snapshot folder.

    Uses ``huggingface_hub.snapshot_download(repo_type="dataset")``, so ``HF_TOKEN``,
    ``HF_HUB_OFFLINE`` and the cache work as everywhere else in the ecosystem.

    Raises:
        FileNotFoundError: The repo or revision does not exist, is private without a token
            that grants access, or the Hub is unreachable and nothing is cached.
        PermissionError: The repo is gated and the token (``HF_TOKEN``) has no access.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    endpoint = hub_endpoint()
    where = endpoint or DEFAULT_ENDPOINT
    try:
        path = snapshot_download(
            repo_id,
            repo_type="dataset",
            revision=revision,
            token=token,
            cache_dir=cache_dir or hub_cache_dir(),
            endpoint=endpoint,
            allow_patterns=allow_patterns,
        )
    except GatedRepoError as err:
        raise PermissionError(
            f"Dataset {repo_id!r} on {where} is gated: accept its terms on the Hub, then set "
            "HF_TOKEN (or run `huggingface-cli login`) with a token that has access"
        ) from err
    except RevisionNotFoundError as err:
        raise FileNotFoundError(
            f"Dataset {repo_id!r} on {where} has no revision {revision!r}; use a branch, tag "
            "or commit that exists (default: main)"
        ) from err
    except RepositoryNotFoundError as err:
        raise FileNotFoundError(
            f"Dataset {repo_id!r} is neither a local file or folder nor a dataset repo on "
            f"{where}. Check the path or repo id; for a private repo set HF_TOKEN."
        ) from err
    except LocalEntryNotFoundError as err:
        raise FileNotFoundError(
            f"Dataset {repo_id!r} is not a local file or folder, and downloading it from "
            f"{where} failed with nothing cached: {err}. Check the network or HF_ENDPOINT, "
            "or pass a local path."
        ) from err
    return Path(path)
