"""Build the pyarrow file system for each scheme from the environment, once per setting.

- ``s3``: :class:`pyarrow.fs.S3FileSystem`. Its constructor does not read
  ``AWS_ENDPOINT_URL`` (only ``FileSystem.from_uri`` does), so ``AWS_ENDPOINT_URL_S3`` or
  ``AWS_ENDPOINT_URL`` is passed as ``endpoint_override`` with its scheme (``http://`` for
  MinIO or moto, ``https://`` when none is written). Credentials come from the AWS chain
  (environment, ``~/.aws``, instance metadata); the region from ``AWS_REGION`` /
  ``AWS_DEFAULT_REGION``, else ``us-east-1`` for a custom endpoint, else the bucket's own.
- ``gs``: :class:`pyarrow.fs.GcsFileSystem` with Google's default credentials, or an emulator
  named by ``STORAGE_EMULATOR_HOST`` (anonymous). google-cloud-cpp retries transient errors
  for 15 minutes by default; the budget here is 30 seconds per operation.
- ``hf``: huggingface_hub's ``HfFileSystem`` behind ``pyarrow.fs.PyFileSystem`` (``hub``).
- local paths: :class:`pyarrow.fs.LocalFileSystem` with absolute paths.

The first use of an s3/gs endpoint sends one quick request (one attempt, 1 s connect and
read timeouts for S3, at most 5 s in all) so that a wrong, down or silent endpoint fails
in seconds with a clear message, rather than after every retry of the real operation.

Both cloud back-ends ship inside the pyarrow wheel from PyPI, so no extra is needed; a
pyarrow built without them gets an error saying so.
"""

from __future__ import annotations

import functools
import os
import threading
from datetime import timedelta
from urllib.parse import urlsplit

import pyarrow.fs as pafs
from huggingface_hub import HfFileSystem

from modeling.storage.errors import detail_text, is_connection_failure, unreachable_error
from modeling.storage.hub import hf_endpoint, hf_path
from modeling.storage.uri import StorageUri, parse

S3_CONNECT_TIMEOUT_S = 3.0
S3_MAX_ATTEMPTS = 3
GCS_RETRY_TIME_LIMIT_S = 30
# The first use of an endpoint checks it is reachable with one quick request, so a wrong
# endpoint fails in about a second instead of after the full retry budget above.
PROBE_CONNECT_TIMEOUT_S = 1.0
PROBE_GCS_RETRY_TIME_LIMIT_S = 1
PROBE_TIMEOUT_S = 5.0
_reachable: set[tuple] = set()
_reachable_lock = threading.Lock()


def _split_endpoint(url: str, default_scheme: str) -> tuple[str, str]:
    """``("host:port", "http")`` from ``http://host:port`` or a bare ``host:port``."""
    split = urlsplit(url if "://" in url else f"{default_scheme}://{url}")
    return split.netloc, split.scheme or default_scheme


def s3_endpoint() -> str | None:
    """The S3 endpoint URL from ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``, if set."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def _arrow_class(name: str, scheme: str):
    """A pyarrow file-system class, or an error if this pyarrow build lacks it."""
    cls = getattr(pafs, name, None)
    if cls is None:  # e.g. conda-forge's pyarrow-core, built without the cloud file systems
        raise ImportError(
            f"{scheme}:// needs pyarrow built with {name}; install the PyPI wheel "
            "(pip install pyarrow) or conda-forge's full pyarrow package"
        )
    return cls


@functools.lru_cache(maxsize=32)
def _s3(endpoint: str | None, region: str, key_id: str | None, profile: str | None, probe: bool):
    return _arrow_class("S3FileSystem", "s3")(**_s3_options(endpoint, region, probe))


def _s3_options(endpoint: str | None, region: str, probe: bool) -> dict:
    """``S3FileSystem`` keywords: endpoint, region, timeouts and retries (short to probe)."""
    kwargs = {
        "connect_timeout": PROBE_CONNECT_TIMEOUT_S if probe else S3_CONNECT_TIMEOUT_S,
        # Honoured on Linux too (as curl's low-speed limit), whatever pyarrow's docs say.
        "request_timeout": PROBE_CONNECT_TIMEOUT_S if probe else None,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(
            max_attempts=1 if probe else S3_MAX_ATTEMPTS
        ),
        "region": region,
        "background_writes": background_writes(),
    }
    if endpoint:
        kwargs["endpoint_override"], kwargs["scheme"] = _split_endpoint(endpoint, "https")
    return kwargs


def background_writes() -> bool:
    """Whether S3 uploads send their parts concurrently (pyarrow's default).

    ``TUNEFLEET_S3_BACKGROUND_WRITES=0`` sends them one at a time, for S3-compatible stores
    that cannot take concurrent parts of one upload (moto, the emulator the benchmarks use).
    """
    return os.environ.get("TUNEFLEET_S3_BACKGROUND_WRITES", "1") != "0"


@functools.lru_cache(maxsize=64)
def _bucket_region(bucket: str) -> str:
    return pafs.resolve_s3_region(bucket)


def _s3_settings(bucket: str) -> tuple:
    endpoint = s3_endpoint()
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        region = "us-east-1" if endpoint else _bucket_region(bucket)
    return endpoint, region, os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_PROFILE")


@functools.lru_cache(maxsize=8)
def _gcs(emulator: str | None, probe: bool) -> pafs.FileSystem:
    limit = PROBE_GCS_RETRY_TIME_LIMIT_S if probe else GCS_RETRY_TIME_LIMIT_S
    kwargs = {"retry_time_limit": timedelta(seconds=limit)}
    if emulator:
        host, scheme = _split_endpoint(emulator, "http")
        kwargs.update(endpoint_override=host, scheme=scheme, anonymous=True)
    return _arrow_class("GcsFileSystem", "gs")(**kwargs)


@functools.lru_cache(maxsize=8)
def _hub(endpoint: str | None, token: str | None) -> pafs.FileSystem:
    return pafs.PyFileSystem(pafs.FSSpecHandler(HfFileSystem(endpoint=endpoint, token=token)))


@functools.lru_cache(maxsize=1)
def _local() -> pafs.FileSystem:
    return pafs.LocalFileSystem()


def _check_reachable(settings: tuple, probe: pafs.FileSystem, parsed: StorageUri) -> None:
    """Once per endpoint, fail fast if it gives no answer.

    The probe asks for the bucket's metadata in a daemon thread and waits at most
    ``PROBE_TIMEOUT_S``: pyarrow's GCS client has no connect or read timeout, so a silent
    endpoint would otherwise hang. Answers that are errors (no permission to read bucket
    metadata, say) count as reachable and are left to the real operation to report.
    """
    if settings in _reachable:
        return
    outcome: list[BaseException | None] = []
    done = threading.Event()

    def ask() -> None:
        try:
            probe.get_file_info(parsed.bucket)
            outcome.append(None)
        except Exception as err:
            outcome.append(err)
        done.set()

    threading.Thread(target=ask, daemon=True, name="storage-probe").start()
    if not done.wait(PROBE_TIMEOUT_S):
        raise unreachable_error(str(parsed), f"no answer within {PROBE_TIMEOUT_S:g} s")
    err = outcome[0]
    if err is not None and is_connection_failure(err):
        raise unreachable_error(str(parsed), detail_text(err))
    with _reachable_lock:
        _reachable.add(settings)


def filesystem(uri: str | os.PathLike) -> tuple[pafs.FileSystem, str]:
    """The pyarrow file system serving ``uri`` and the path of ``uri`` inside it.

    File systems are cached per scheme and endpoint (and S3 region/credentials), so
    connections are reused; changing the environment gives a new one.

    Raises:
        ValueError: For an unsupported or malformed URI.
    """
    parsed = parse(uri)
    return backend(parsed), path_in(parsed)


def backend(parsed: StorageUri) -> pafs.FileSystem:
    """The cached file system for a parsed URI (see :func:`filesystem`).

    Raises:
        RemoteUnreachableError: When an s3/gs endpoint used for the first time cannot be
            reached (checked with one request and a short timeout).
    """
    if parsed.scheme == "s3":
        settings = _s3_settings(parsed.bucket)
        _check_reachable(("s3", *settings), _s3(*settings, probe=True), parsed)
        return _s3(*settings, probe=False)
    if parsed.scheme == "gs":
        emulator = os.environ.get("STORAGE_EMULATOR_HOST") or None
        _check_reachable(("gs", emulator), _gcs(emulator, probe=True), parsed)
        return _gcs(emulator, probe=False)
    if parsed.scheme == "hf":
        return _hub(hf_endpoint(), os.environ.get("HF_TOKEN") or None)
    return _local()


def portable_filesystem(uri: str | os.PathLike) -> tuple[pafs.FileSystem, str]:
    """Like :func:`filesystem`, but carrying this process's S3 credentials when it pickles.

    Ray Train opens its ``storage_filesystem`` in other processes (its controller, on any
    node), whose environment need not hold the credentials the driver was given; an S3
    file system built with them explicitly takes them along. Other schemes are as
    :func:`filesystem` gives them.
    """
    parsed = parse(uri)
    fs = backend(parsed)
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if parsed.scheme != "s3" or not (key and secret):
        return fs, path_in(parsed)
    endpoint, region, _, _ = _s3_settings(parsed.bucket)
    credentials = {
        "access_key": key,
        "secret_key": secret,
        "session_token": os.environ.get("AWS_SESSION_TOKEN"),
    }
    options = _s3_options(endpoint, region, probe=False)
    return pafs.S3FileSystem(**options, **credentials), path_in(parsed)


def path_in(parsed: StorageUri) -> str:
    """The path of a parsed URI inside its file system (``bucket/key``, absolute locally)."""
    if parsed.scheme == "hf":
        return hf_path(parsed)
    if parsed.scheme == "file":
        return os.path.abspath(parsed.key)
    return f"{parsed.bucket}/{parsed.key}" if parsed.key else parsed.bucket
