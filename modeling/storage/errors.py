"""Storage errors with one clear message each, translated from pyarrow and huggingface_hub.

pyarrow reports every S3/GCS failure as a bare ``OSError`` whose text holds the AWS or
google-cloud-cpp error code, and huggingface_hub raises its own HTTP errors; a user
should instead see which URI failed and what to change. :func:`translate` is the one
place that maps a raw error to a :class:`StorageError` subclass (applied by
``filesystems.storage_errors`` around every operation), which still is the matching
builtin (``FileNotFoundError``, ``PermissionError``, ``ConnectionError``) so callers may
catch either. :func:`is_transient` says which errors are worth retrying.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from modeling.storage.uri import StorageUri, parse


class StorageError(OSError):
    """A storage operation failed; the message names the URI and the fix."""


class RemoteNotFoundError(StorageError, FileNotFoundError):
    """The object, prefix, bucket, repo or revision does not exist."""


class RemotePermissionError(StorageError, PermissionError):
    """Credentials are missing, wrong, or not allowed this operation (or a gated repo)."""


class RemoteUnreachableError(StorageError, ConnectionError):
    """The endpoint could not be reached (refused, unresolvable host, timed out)."""


class TransientStorageError(StorageError):
    """The store kept failing with errors that are usually temporary (5xx, resets)."""


# Substrings of pyarrow's S3 ("AWS Error <CODE>") and GCS ("google::cloud::Status(<CODE>")
# messages, and of Python/httpx exception names, by outcome.
_NOT_FOUND = (
    "NO_SUCH_BUCKET",
    "NO_SUCH_KEY",
    "RESOURCE_NOT_FOUND",
    "NOT_FOUND:",
    "HTTP status 404",
)
_NO_BUCKET = ("NO_SUCH_BUCKET", "The specified bucket does not exist")
_DENIED = (
    "ACCESS_DENIED",
    "INVALID_ACCESS_KEY_ID",
    "SIGNATURE_DOES_NOT_MATCH",
    "INVALID_SIGNATURE",
    "MISSING_AUTHENTICATION_TOKEN",
    "EXPIRED_TOKEN",
    "HTTP status 401",
    "HTTP status 403",
    "PERMISSION_DENIED",
    "UNAUTHENTICATED",
)
# Connecting failed (curl 6: unresolvable host, 7: refused); other NETWORK_CONNECTION
# failures (28: timeout, 52/56: dropped mid-response) count as transient.
_UNREACHABLE = (
    "curlCode: 6,",
    "curlCode: 7,",
    "Could not connect",
    "Could not resolve",
    "Failed to connect",
    "Connection refused",
    "CURL error [6]",
    "CURL error [7]",
)
_TRANSIENT = (
    "HTTP status 5",
    "INTERNAL_FAILURE",
    "SERVICE_UNAVAILABLE",
    "SLOW_DOWN",
    "THROTTLING",
    "REQUEST_TIMEOUT",
    "Connection reset",
    "timed out",
    "Timeout",
    "UNAVAILABLE",
    "DEADLINE_EXCEEDED",
    "CURL error [28]",
    "CURL error [52]",
    "CURL error [56]",
    "NETWORK_CONNECTION",
)
_TRANSIENT_TYPES = (
    "ReadTimeout",
    "WriteTimeout",
    "PoolTimeout",
    "ReadError",
    "RemoteProtocolError",
)
_UNREACHABLE_TYPES = ("ConnectError", "ConnectTimeout")
_HTTP_STATUS = re.compile(r"HTTP status (\d{3})")


def _chain(err: BaseException) -> Iterator[BaseException]:
    """``err`` and its causes/contexts (huggingface_hub wraps httpx errors in its own)."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def _status(err: BaseException) -> int | None:
    """The HTTP status of an error, from a ``response`` attribute or pyarrow's message."""
    for item in _chain(err):
        response = getattr(item, "response", None)
        code = getattr(response, "status_code", None)
        if isinstance(code, int):
            return code
        match = _HTTP_STATUS.search(str(item))
        if match:
            return int(match.group(1))
    return None


def _any(err: BaseException, needles: tuple[str, ...]) -> bool:
    return any(n in str(item) for item in _chain(err) for n in needles)


def _type_named(err: BaseException, names: tuple[str, ...]) -> bool:
    return any(type(item).__name__ in names for item in _chain(err))


def _hf_error(err: BaseException, name: str) -> bool:
    """Whether a huggingface_hub error class ``name`` (or a subclass) is in the chain."""
    return any(
        name in {c.__name__ for c in type(item).__mro__}
        and type(item).__module__.startswith("huggingface_hub")
        for item in _chain(err)
    )


def is_transient(err: BaseException) -> bool:
    """Whether retrying may succeed: 5xx, throttling, resets and timeouts, not 403/404.

    A refused connection or an unresolvable host is not transient here: pyarrow has
    already retried it, and a wrong endpoint should fail in seconds.
    """
    if isinstance(err, StorageError):
        return isinstance(err, TransientStorageError)
    if isinstance(err, (FileNotFoundError, PermissionError, ConnectionRefusedError)):
        return False
    status = _status(err)
    if status is not None:
        return status >= 500 or status in (408, 429)
    if _any(err, _DENIED + _NOT_FOUND) or _any(err, _UNREACHABLE):
        return False
    if _type_named(err, _UNREACHABLE_TYPES):
        return False
    if isinstance(err, (TimeoutError, ConnectionResetError, ConnectionAbortedError)):
        return True
    return _type_named(err, _TRANSIENT_TYPES) or _any(err, _TRANSIENT)


def is_connection_failure(err: BaseException) -> bool:
    """Whether no HTTP answer came at all: refused, unresolvable, timed out or dropped."""
    if _status(err) is not None:
        return False
    return (
        isinstance(err, (ConnectionError, TimeoutError))
        or _any(err, _UNREACHABLE + ("NETWORK_CONNECTION", "Timeout was reached", "UNAVAILABLE"))
        or _type_named(err, _UNREACHABLE_TYPES + _TRANSIENT_TYPES)
    )


def unreachable_error(uri: str, detail: str) -> RemoteUnreachableError:
    """The error for an endpoint that gives no answer, naming the variable that sets it."""
    scheme = parse(uri).scheme
    return RemoteUnreachableError(
        f"Cannot reach the storage endpoint for {uri}: {_endpoint_hint(scheme)} (detail: {detail})"
    )


def _endpoint_where(scheme: str) -> str:
    """Which endpoint the environment points ``scheme`` at, and the variable that sets it."""
    if scheme == "s3":
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        return f"{endpoint} (AWS_ENDPOINT_URL)" if endpoint else "AWS S3 (AWS_ENDPOINT_URL unset)"
    if scheme == "gs":
        emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        return f"{emulator} (STORAGE_EMULATOR_HOST)" if emulator else "Google Cloud Storage"
    return f"{_hf_endpoint()} (HF_ENDPOINT)"


def _hf_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def _endpoint_hint(scheme: str) -> str:
    variable = {"s3": "AWS_ENDPOINT_URL", "gs": "STORAGE_EMULATOR_HOST", "hf": "HF_ENDPOINT"}
    return (
        f"the endpoint is {_endpoint_where(scheme)}; check the network, or set "
        f"{variable[scheme]} to a reachable endpoint"
    )


def _credentials_hint(scheme: str, bucket: str) -> str:
    if scheme == "s3":
        return (
            f"set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) to credentials that may "
            f"access bucket {bucket!r}, and AWS_ENDPOINT_URL for a non-AWS store"
        )
    if scheme == "gs":
        return (
            "set GOOGLE_APPLICATION_CREDENTIALS to a service-account key that may access "
            f"bucket {bucket!r}"
        )
    if scheme == "hf":
        return "set HF_TOKEN to a token with read access to the repo"
    return "check the file's permissions"


def detail_text(err: BaseException) -> str:
    """The raw error on one line, shortened: kept in messages for diagnosis."""
    text = " ".join(str(err).split())
    return text if len(text) <= 300 else text[:297] + "..."


def translate(err: BaseException, uri: str, *, bucket_exists: bool | None = None) -> BaseException:
    """Map a raw storage error for ``uri`` to a :class:`StorageError` with a clear message.

    Args:
        err: The error pyarrow, huggingface_hub or the OS raised.
        uri: The path or URI the operation was on, as the user gave it.
        bucket_exists: For s3/gs not-found errors, whether the bucket exists (the caller
            may check, since pyarrow reports both cases alike); None if unknown.

    Returns:
        A :class:`StorageError` subclass, or ``err`` itself when it is already one or is
        not a storage failure (e.g. a ``ValueError`` from bad arguments).
    """
    if isinstance(err, StorageError) or not isinstance(err, Exception):
        return err
    parsed = parse(uri)
    scheme, bucket = parsed.scheme, parsed.bucket
    detail = detail_text(err)
    if scheme == "hf":
        found = _translate_hf(err, uri, parsed, detail)
        if found is not None:
            return found
    status = _status(err)
    if isinstance(err, PermissionError) or status in (401, 403) or _any(err, _DENIED):
        return RemotePermissionError(
            f"Access denied to {uri}: {_credentials_hint(scheme, bucket)} (detail: {detail})"
        )
    if isinstance(err, FileNotFoundError) or status == 404 or _any(err, _NOT_FOUND):
        no_bucket = bucket_exists is False or _any(err, _NO_BUCKET)
        if parsed.is_remote and scheme != "hf" and no_bucket:
            return RemoteNotFoundError(
                f"{uri} does not exist: there is no bucket {bucket!r} at "
                f"{_endpoint_where(scheme)}; create the bucket or fix the URI"
            )
        return RemoteNotFoundError(f"{uri} does not exist; check the path or URI")
    if (
        isinstance(err, ConnectionRefusedError)
        or _any(err, _UNREACHABLE)
        or _type_named(err, _UNREACHABLE_TYPES)
    ):
        return unreachable_error(uri, detail)
    if is_transient(err):
        return TransientStorageError(
            f"Storage kept failing for {uri} after retries ({_endpoint_hint(scheme)}; or try "
            f"again later) (detail: {detail})"
        )
    if isinstance(err, OSError) and parsed.is_remote:
        return StorageError(f"Storage operation on {uri} failed (detail: {detail})")
    return err


def _translate_hf(
    err: BaseException, uri: str, parsed: StorageUri, detail: str
) -> StorageError | None:
    endpoint, repo_id = _hf_endpoint(), parsed.bucket
    if _hf_error(err, "GatedRepoError"):
        page = repo_id if parsed.repo_type == "model" else f"{parsed.repo_type}s/{repo_id}"
        return RemotePermissionError(
            f"{uri} is in a gated repo: accept its licence at {endpoint}/{page} while logged "
            "in, and set HF_TOKEN to a token of that account"
        )
    if _hf_error(err, "RevisionNotFoundError") or "(revision not found)" in str(err):
        return RemoteNotFoundError(
            f"{uri}: the revision does not exist in {repo_id}; check the name after '@'"
        )
    if _hf_error(err, "RepositoryNotFoundError") or "(repository not found)" in str(err):
        token = "HF_TOKEN is set" if os.environ.get("HF_TOKEN") else "HF_TOKEN is unset"
        return RemoteNotFoundError(
            f"{uri}: repository {repo_id!r} not found at {endpoint} ({token}); check the repo id, "
            "or for a private repo set HF_TOKEN to a token with access"
        )
    if _hf_error(err, "EntryNotFoundError") or isinstance(err, FileNotFoundError):
        return RemoteNotFoundError(f"{uri} does not exist in {repo_id}; check the path in the repo")
    if _status(err) in (401, 403):
        return RemotePermissionError(
            f"Access denied to {uri}: {_credentials_hint('hf', repo_id)} (detail: {detail})"
        )
    return None
