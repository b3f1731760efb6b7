"""Fetch a model repo from the Hugging Face Hub into a local directory (``tune download``).

The files come through ``huggingface_hub.snapshot_download(local_dir=...)``, so mirrors
(``HF_ENDPOINT``), tokens, resumable transfers and the hub's own consistency checks work as
in the rest of the ecosystem.

How the output directory is written, so that a failed download is never mistaken for a
complete one:

- A new (missing or empty) ``--output-dir`` is downloaded into a hidden sibling,
  ``.<name>.<repo>.partial``, and renamed into place only once every file has arrived. After
  a failure the output directory does not exist; the partial sibling is kept so that running
  the same command again resumes rather than starting over (it is named in the error).
- An existing, non-empty ``--output-dir`` (typically an earlier ``tune download`` being
  refreshed to a new revision) is updated in place, as ``snapshot_download`` does: files
  already up to date are skipped and each file is replaced atomically, but after a failure
  the directory may mix revisions, which the error message says.

The token (``--hf-token`` or ``HF_TOKEN``) is only sent in request headers: it is never
printed, logged or saved (no ``login()``), and it is masked in any error text just in case.
"""

import os
import shutil
import tempfile
from pathlib import Path

from modeling.checkpointing.atomic import publish_directory
from modeling.storage import is_remote
from modeling.storage.paths import as_path
from orchestrator.hub import hub_cache_dir, hub_endpoint, hub_endpoint_name

# Llama 3 repos ship Meta's original weights (``original/consolidated.NN.pth``, 16 GB for 8B)
# next to the Hugging Face safetensors that the built-in configs load; skip the duplicate.
# ``original/tokenizer.model`` and ``original/params.json`` are still downloaded.
DEFAULT_IGNORE_PATTERNS = ("original/consolidated*.pth",)


class DownloadError(Exception):
    """A download failed for a reason the user can act on; the message says what to do."""


def _staging_dir(output_dir: Path, repo_id: str) -> Path:
    """The hidden sibling a new output directory is assembled in (stable, so reruns resume)."""
    return output_dir.parent / f".{output_dir.name}.{repo_id.replace('/', '--')}.partial"


def _has_files(folder: Path) -> bool:
    """Whether ``folder`` holds any file outside huggingface_hub's ``.cache`` bookkeeping."""
    for path in folder.rglob("*"):
        if path.is_file() and ".cache" not in path.relative_to(folder).parts:
            return True
    return False


def _mask(text: str, token: str | None) -> str:
    """``text`` with the token replaced by ``***`` (a guard: no message should contain it)."""
    return text.replace(token, "***") if token else text


def _is_connection_error(err: BaseException) -> bool:
    """Whether ``err`` (or what caused it) means the endpoint could not be reached at all."""
    seen = 0
    while err is not None and seen < 10:
        name = type(err).__name__
        if isinstance(err, (ConnectionError, TimeoutError)) or name in (
            "ConnectError",
            "ConnectTimeout",
            "TimeoutException",
            "ReadTimeout",
            "NetworkError",
        ):
            return True
        err, seen = err.__cause__ or err.__context__, seen + 1
    return False


def download_model(
    repo_id: str,
    output_dir: str | os.PathLike,
    *,
    revision: str | None = None,
    token: str | None = None,
    ignore_patterns: list[str] | tuple[str, ...] | None = DEFAULT_IGNORE_PATTERNS,
) -> tuple[Path, str, list[str]]:
    """Download a model repo's files into ``output_dir`` (see the module docstring for how).

    Args:
        repo_id: ``namespace/name`` on the Hub (or the mirror at ``HF_ENDPOINT``).
        output_dir: Where the files go.
        revision: Branch, tag or commit; default the repo's main branch. The download is
            pinned to the commit this resolves to when it starts, so all files match.
        token: Hub token for gated or private repos; None uses the huggingface_hub default
            (``HF_TOKEN`` or a stored login).
        ignore_patterns: Glob patterns of repo paths to skip; empty or None skips nothing.

    Returns:
        The output directory, the commit downloaded, and the repo paths it holds.

    Raises:
        DownloadError: The repo, revision or endpoint cannot be used, access is refused, or
            a transfer failed; the message names the cause and the fix.
    """
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.utils import filter_repo_objects

    if is_remote(output_dir):  # download to scratch, then upload and mark complete
        with tempfile.TemporaryDirectory(prefix="tunefleet-download-") as scratch:
            local, sha, files = download_model(
                repo_id,
                Path(scratch) / "model",
                revision=revision,
                token=token,
                ignore_patterns=ignore_patterns,
            )
            shutil.rmtree(local / ".cache", ignore_errors=True)  # huggingface_hub's bookkeeping
            publish_directory(local, os.fspath(output_dir))
        return as_path(output_dir), sha, files
    output = Path(output_dir).expanduser().absolute()
    patterns = [p for p in (ignore_patterns or ()) if p] or None
    endpoint, where = hub_endpoint(), hub_endpoint_name()
    token_help = "pass --hf-token or set HF_TOKEN"
    if output.exists() and not output.is_dir():
        raise DownloadError(f"--output-dir {output} exists and is not a directory")
    in_place = output.is_dir() and any(output.iterdir())
    target = output if in_place else _staging_dir(output, repo_id)

    def explain(err: BaseException) -> DownloadError:
        if isinstance(err, GatedRepoError):
            msg = (
                f"Model {repo_id!r} on {where} is gated: accept its licence on "
                f"{where}/{repo_id} while logged in, then {token_help} with a token of that "
                "account" + (" (the token given has no access)" if token else "")
            )
        elif isinstance(err, RevisionNotFoundError):
            msg = f"Model {repo_id!r} on {where} has no revision {revision!r}"
        elif isinstance(err, RepositoryNotFoundError):
            msg = (
                f"Model repo {repo_id!r} not found on {where}. Check the id; a private repo "
                f"also needs a token with access ({token_help})"
            )
        elif _is_connection_error(err) or isinstance(err, LocalEntryNotFoundError):
            msg = (
                f"Cannot reach the Hugging Face Hub at {where} ({type(err).__name__}). Check "
                "the network, proxy and HF_ENDPOINT (and that HF_HUB_OFFLINE is not set)"
            )
        elif isinstance(err, HfHubHTTPError):
            msg = f"Downloading {repo_id!r} from {where} failed: {err}"
        else:
            msg = f"Downloading {repo_id!r} into {target} failed: {type(err).__name__}: {err}"
        return DownloadError(_mask(msg, token))

    try:
        api = HfApi(endpoint=endpoint, library_name="tunefleet")
        info = api.model_info(repo_id, revision=revision, token=token)
    except Exception as err:  # noqa: BLE001 - every failure becomes a message
        raise explain(err) from None
    files = [s.rfilename for s in info.siblings or []]
    files = sorted(filter_repo_objects(files, ignore_patterns=patterns))

    try:
        snapshot_download(
            repo_id,
            revision=info.sha,
            local_dir=target,
            cache_dir=hub_cache_dir(),
            token=token,
            ignore_patterns=patterns,
            endpoint=endpoint,
            library_name="tunefleet",
        )
    except Exception as err:  # noqa: BLE001 - every failure becomes a message
        failure = explain(err)
        if in_place:
            note = f"{output} was being updated in place and may now mix revisions; run again"
        elif _has_files(target):
            note = f"{output} was not created; rerunning resumes from {target}"
        else:
            shutil.rmtree(target, ignore_errors=True)  # nothing worth keeping
            note = f"{output} was not created"
        raise DownloadError(f"{failure}. {note}.") from None

    if not in_place:
        if output.is_dir():
            output.rmdir()  # empty: checked above
        output.parent.mkdir(parents=True, exist_ok=True)
        os.replace(target, output)
    return output, info.sha or "", files
