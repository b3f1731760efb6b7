"""Fetch a model repo from the Hugging Face Hub into a local directory (``tune download``).

The files come through ``huggingface_hub.snapshot_download(local_dir=...)``, so mirrors
(``HF_ENDPOINT``), tokens, resumable transfers and the hub's own consistency checks work as
in the rest of the ecosystem.

How the output directory is written, so that a failed download is never mistaken for a
complete one and no one else's files are lost:

- The files are downloaded into a hidden sibling, ``.<name>.<repo>.partial``, which is
  renamed into place, with a last :data:`~modeling.checkpointing.atomic.COMPLETE_MARKER`,
  only once every file has arrived. After a failure ``--output-dir`` is as it was; the
  partial sibling is kept so that running the same command again resumes rather than
  starting over (it is named in the error).
- ``--output-dir`` may be missing, empty, or an earlier download: a ``tune download`` of
  the same repo (its marker names the repo) or a ``huggingface-cli download --local-dir``
  (huggingface_hub keeps a record of each file it wrote). Refreshing one (a new revision,
  other ignore patterns) links its files into the partial sibling first, so only what
  changed is transferred, and replaces it whole at the end; files added to it are kept.
- Anything else (a file, a folder of other files, another repo's download) is refused
  before any transfer, naming it and ``--force``, which replaces it.
- Behind a URI the same rule holds (an earlier download is one with the marker); the files
  are downloaded to node-local scratch, uploaded over what was there, and marked last.

The token (``--hf-token`` or ``HF_TOKEN``) is only sent in request headers: it is never
printed, logged or saved (no ``login()``), and it is masked in any error text just in case.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

from modeling.checkpointing.atomic import COMPLETE_MARKER, publish_directory, replace_directory
from modeling.checkpointing.output_rule import check_output_directory
from modeling.storage import is_remote
from modeling.storage.paths import StoragePath, as_path
from orchestrator.hub import hub_cache_dir, hub_endpoint, hub_endpoint_name

# Llama 3 repos ship Meta's original weights (``original/consolidated.NN.pth``, 16 GB for 8B)
# next to the Hugging Face safetensors that the built-in configs load; skip the duplicate.
# ``original/tokenizer.model`` and ``original/params.json`` are still downloaded.
DEFAULT_IGNORE_PATTERNS = ("original/consolidated*.pth",)
WRITER = "tune download"  # in the marker: which outputs are this command's own


class DownloadError(Exception):
    """A download failed for a reason the user can act on; the message says what to do.

    Attributes:
        reason: The cause alone, without the note on what was left on disk.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


def _staging_dir(output_dir: Path, repo_id: str) -> Path:
    """The hidden sibling a new output directory is assembled in (stable, so reruns resume)."""
    return output_dir.parent / f".{output_dir.name}.{repo_id.replace('/', '--')}.partial"


def read_download_marker(directory: Path | StoragePath) -> dict | None:
    """What an earlier ``tune download`` recorded in ``directory``; None if it wrote none.

    Other tunefleet outputs (a merged model behind a URI) hold a marker too, without the
    record: those are not downloads.
    """
    marker = directory / COMPLETE_MARKER
    if not marker.is_file():
        return None
    try:
        found = json.loads(marker.read_text())
    except (ValueError, OSError):
        return None
    return found if isinstance(found, dict) and found.get("written_by") == WRITER else None


def _marker_text(repo_id: str, sha: str | None) -> str:
    return json.dumps({"written_by": WRITER, "repo_id": repo_id, "revision": sha}) + "\n"


def _is_hub_download(folder: Path) -> bool:
    """Whether huggingface_hub put every file of ``folder`` there (``--local-dir`` downloads).

    Each file it downloads into a local directory has a record in
    ``.cache/huggingface/download/<path>.metadata``: a folder whose every file has one is a
    download (by ``huggingface-cli`` or an earlier tunefleet), safe to refresh.
    """
    records = folder / ".cache" / "huggingface" / "download"
    files = [
        path.relative_to(folder)
        for path in folder.rglob("*")
        if path.is_file() and ".cache" not in path.relative_to(folder).parts
    ]
    return bool(files) and all((records / f"{name}.metadata").is_file() for name in files)


def check_download_target(output: Path | StoragePath, repo_id: str, force: bool) -> bool:
    """Raise ``ValueError`` unless ``output`` may receive ``repo_id``; say if it is a refresh.

    Allowed: a missing or empty path, or an earlier download of the same repo (refreshed);
    with ``force``, anything (replaced).

    Returns:
        Whether ``output`` is an earlier download, whose files can be reused.
    """
    is_dir = output.is_dir()
    marker = read_download_marker(output) if is_dir else None
    if marker is not None and marker.get("repo_id", repo_id) != repo_id:
        if force:
            return False
        raise ValueError(
            f"--output-dir {output} holds {marker['repo_id']!r}, not {repo_id!r}; choose "
            f"another directory, or pass --force to replace it"
        )
    own = marker is not None or (is_dir and isinstance(output, Path) and _is_hub_download(output))
    check_output_directory(
        output,
        [],
        force=force,
        option="--output-dir",
        recognise=lambda names: own,
        stranger="files that tune download did not write",
    )
    return own


def _carry_over(old: Path, staging: Path) -> None:
    """Hard-link ``old``'s files into ``staging`` (copy where links fail), except its marker.

    huggingface_hub's bookkeeping (``.cache``) is copied, never linked: it rewrites those
    files in place, which must not change ``old``. Data files are only ever replaced by a
    rename, so a link keeps ``old`` intact until it is replaced whole.
    """
    for source in sorted(old.rglob("*")):
        relative = source.relative_to(old)
        target = staging / relative
        if source.is_dir() or target.exists() or relative == Path(COMPLETE_MARKER):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if ".cache" in relative.parts:
            shutil.copy2(source, target)
            continue
        try:
            os.link(source, target, follow_symlinks=False)
        except OSError:
            shutil.copy2(source, target, follow_symlinks=False)


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
    force: bool = False,
) -> tuple[Path | StoragePath, str, list[str]]:
    """Download a model repo's files into ``output_dir`` (see the module docstring for how).

    Args:
        repo_id: ``namespace/name`` on the Hub (or the mirror at ``HF_ENDPOINT``).
        output_dir: Where the files go.
        revision: Branch, tag or commit; default the repo's main branch. The download is
            pinned to the commit this resolves to when it starts, so all files match.
        token: Hub token for gated or private repos; None uses the huggingface_hub default
            (``HF_TOKEN`` or a stored login).
        ignore_patterns: Glob patterns of repo paths to skip; empty or None skips nothing.
        force: Replace ``output_dir`` even if it is not an earlier download of this repo.

    Returns:
        The output directory, the commit downloaded, and the repo paths it holds.

    Raises:
        ValueError: ``output_dir`` holds something else (see the module docstring).
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
        remote = as_path(output_dir)
        check_download_target(remote, repo_id, force)  # before any transfer
        with tempfile.TemporaryDirectory(prefix="tunefleet-download-") as scratch:
            try:
                local, sha, files = download_model(
                    repo_id,
                    Path(scratch) / "model",
                    revision=revision,
                    token=token,
                    ignore_patterns=ignore_patterns,
                )
            except DownloadError as err:  # its note names the scratch directory
                raise DownloadError(f"{err.reason}. {remote} was not written.") from None
            shutil.rmtree(local / ".cache", ignore_errors=True)  # huggingface_hub's bookkeeping
            (local / COMPLETE_MARKER).unlink()  # publish_directory writes it, last
            publish_directory(local, str(remote), marker=_marker_text(repo_id, sha))
        return remote, sha, files
    output = Path(output_dir).expanduser().absolute()
    patterns = [p for p in (ignore_patterns or ()) if p] or None
    endpoint, where = hub_endpoint(), hub_endpoint_name()
    token_help = "pass --hf-token or set HF_TOKEN"
    refresh = check_download_target(output, repo_id, force)  # before any transfer
    existed = output.exists() or output.is_symlink()
    target = _staging_dir(output, repo_id)

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
        if refresh:
            _carry_over(output, target)
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
        kept = f"{output} is as it was" if existed else f"{output} was not created"
        if _has_files(target):
            note = f"{kept}; rerunning resumes from {target}"
        else:
            shutil.rmtree(target, ignore_errors=True)  # nothing worth keeping
            note = kept
        raise DownloadError(f"{failure}. {note}.", str(failure)) from None

    (target / COMPLETE_MARKER).write_text(_marker_text(repo_id, info.sha))
    replace_directory(output, target)
    return output, info.sha or "", files
