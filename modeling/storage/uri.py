"""Parse and join local paths and storage URIs without mangling them.

Every input and output of a run may be a local path or a URI, so paths are handled as
strings: ``pathlib.Path("s3://b/x")`` collapses the double slash (``s3:/b/x``), which then
reads as a local path. The accepted forms:

- local: ``/abs/path``, ``rel/path``, ``~/path``, or ``file:///abs/path``;
- ``s3://bucket/key/...`` and ``gs://bucket/key/...`` (the key may be empty: the bucket root);
- ``hf://[datasets/|spaces/]namespace/repo[@revision][/path/in/repo]`` (inputs only), where
  ``revision`` is a branch, tag or commit hash without ``/``, one of the Hub's refs
  ``refs/pr/<N>`` and ``refs/convert/<name>``, or any name with its ``/`` percent-encoded
  (``feature%2Fx``); without ``@`` the repo's default branch is read. These are the paths
  :class:`huggingface_hub.HfFileSystem` understands, minus its ``buckets/`` form.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

REMOTE_SCHEMES = ("s3", "gs", "hf")
HF_REPO_TYPES = {"datasets": "dataset", "spaces": "space"}
# The Hub's refs whose names hold a "/" (pull requests, conversions), as huggingface_hub parses.
_SPECIAL_REF = re.compile(r"pr/\d+|convert/[\w.-]+")


@dataclass(frozen=True)
class StorageUri:
    """A parsed path or URI.

    Attributes:
        scheme: ``"file"`` for a local path, else ``"s3"``, ``"gs"`` or ``"hf"``.
        bucket: The bucket (s3/gs) or repo id ``namespace/repo`` (hf); ``""`` for local paths.
        key: The object key or path in the repo, without leading or trailing ``/`` (``""``
            for a bucket or repo root); for a local path, the path as given (``~`` expanded).
        revision: hf only: the revision named after ``@`` (decoded), or None for the default.
        repo_type: hf only: ``"model"``, ``"dataset"`` or ``"space"``.
    """

    scheme: str
    bucket: str
    key: str
    revision: str | None = None
    repo_type: str | None = None

    @property
    def is_remote(self) -> bool:
        """Whether this names remote storage rather than a local path."""
        return self.scheme != "file"

    @property
    def root(self) -> str:
        """The URI of the bucket or repo root (``s3://b``, ``hf://datasets/org/d@v1``)."""
        if self.scheme == "hf":
            prefix = "" if self.repo_type == "model" else f"{self.repo_type}s/"
            revision = "" if self.revision is None else f"@{hf_revision_text(self.revision)}"
            return f"hf://{prefix}{self.bucket}{revision}"
        return f"{self.scheme}://{self.bucket}"

    def with_key(self, key: str) -> StorageUri:
        """The same bucket or repo with another key."""
        return StorageUri(self.scheme, self.bucket, key.strip("/"), self.revision, self.repo_type)

    def __str__(self) -> str:
        if not self.is_remote:
            return self.key
        return f"{self.root}/{self.key}" if self.key else self.root


def hf_revision_text(revision: str) -> str:
    """A revision as written in an hf:// path: as is when it parses back, else encoded."""
    if "/" not in revision or _SPECIAL_REF.fullmatch(revision.removeprefix("refs/")):
        return revision
    return quote(revision, safe="")


def _scheme_of(path: str) -> str | None:
    head, sep, _ = path.partition("://")
    return head.lower() if sep and head.isalnum() else None


def parse(path: str | os.PathLike) -> StorageUri:
    """Split a local path or URI into scheme, bucket (or repo) and key.

    Raises:
        ValueError: Naming the URI, for an unknown scheme, a missing bucket, or an hf://
            URI without ``namespace/repo``.
    """
    text = os.fspath(path)
    scheme = _scheme_of(text)
    if scheme is None:
        return StorageUri("file", "", os.path.expanduser(text))
    rest = text.split("://", 1)[1]
    if scheme == "file":
        return StorageUri("file", "", unquote(rest) or "/")
    if scheme not in REMOTE_SCHEMES:
        raise ValueError(
            f"Unsupported URI {text!r}: use a local path or one of "
            f"{', '.join(s + '://' for s in REMOTE_SCHEMES)}"
        )
    if scheme == "hf":
        return _parse_hf(text, rest)
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ValueError(f"URI {text!r} names no bucket; write {scheme}://bucket/prefix")
    return StorageUri(scheme, bucket, key.strip("/"))


def _parse_hf(text: str, rest: str) -> StorageUri:
    parts = [p for p in rest.split("/") if p]
    repo_type = "model"
    if parts and parts[0] in HF_REPO_TYPES:
        repo_type = HF_REPO_TYPES[parts.pop(0)]
    elif parts and parts[0] == "buckets":
        raise ValueError(f"Unsupported URI {text!r}: Hugging Face buckets are not supported")
    if len(parts) < 2 or "@" in parts[0]:
        raise ValueError(
            f"URI {text!r} names no repository; write "
            "hf://namespace/repo[@revision][/path] (hf://datasets/... for a dataset)"
        )
    repo, at, revision = parts[1].partition("@")
    path = parts[2:]
    if at and revision == "refs" and len(path) >= 2 and _SPECIAL_REF.fullmatch("/".join(path[:2])):
        revision, path = f"refs/{path[0]}/{path[1]}", path[2:]
    if not repo or (at and not revision):
        raise ValueError(f"URI {text!r} has an empty repo name or revision after '@'")
    return StorageUri(
        "hf", f"{parts[0]}/{repo}", "/".join(path), unquote(revision) if at else None, repo_type
    )


def is_remote(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a storage URI (s3://, gs://, hf://) rather than a local path."""
    return _scheme_of(os.fspath(path)) in REMOTE_SCHEMES


def join(base: str | os.PathLike, *parts: str) -> str:
    """Join path segments onto a local path or URI, keeping the form the user gave.

    ``join("s3://b/x", "y/z.json") == "s3://b/x/y/z.json"``; local paths join as
    :func:`os.path.join` does. Empty segments are skipped and slashes between segments are
    not doubled.
    """
    text = os.fspath(base)
    if not is_remote(text):
        return os.path.join(text, *parts) if parts else text
    out = text.rstrip("/")
    for part in parts:
        part = part.strip("/")
        if part:
            out = f"{out}/{part}"
    return out


def parent(path: str | os.PathLike) -> str:
    """The containing folder; a bucket or repo root is its own parent, as ``/`` is locally."""
    text = os.fspath(path)
    if not is_remote(text):
        stripped = text.rstrip("/") or "/"
        return os.path.dirname(stripped) or "."
    parsed = parse(text)
    return str(parsed.with_key(parsed.key.rpartition("/")[0]))


def name(path: str | os.PathLike) -> str:
    """The last segment (``"config.json"``); for a root, the bucket or repo name."""
    text = os.fspath(path)
    if not is_remote(text):
        return os.path.basename(text.rstrip("/"))
    parsed = parse(text)
    if parsed.key:
        return parsed.key.rpartition("/")[2]
    return parsed.bucket.rpartition("/")[2]
