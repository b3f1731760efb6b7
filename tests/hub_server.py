"""A local stand-in for the Hugging Face Hub, for tests that download without a network.

It speaks the part of the Hub's HTTP protocol that ``huggingface_hub.snapshot_download`` and
``hf_hub_download`` use (checked against the installed huggingface_hub):

- ``GET /api/{models,datasets}/{repo_id}[/revision/{rev}]``: repo info (``sha``, ``siblings``).
- ``GET /api/{models,datasets}/{repo_id}/tree/{rev}[/{path}]?recursive=``: the file listing.
- ``HEAD``/``GET /{repo_id}/resolve/{rev}/{path}`` (models) and
  ``/datasets/{repo_id}/resolve/{rev}/{path}``: the file, with ``X-Repo-Commit``, ``ETag``,
  ``Content-Length``, and ``X-Linked-Etag``/``X-Linked-Size`` for LFS-like files; ``Range``
  requests get 206 so resumed downloads work.

Errors carry the ``X-Error-Code`` header huggingface_hub maps to exceptions, with the Hub's
status codes: an unknown or private repo is 401 (anonymous) or 404 (with a token)
``RepoNotFound``; a gated repo without a granted token is 401/403 ``GatedRepo`` on file
downloads (its info and listing stay public, as on the Hub); ``RevisionNotFound`` and
``EntryNotFound`` are 404.

Example::

    with HubServer() as hub:
        hub.add_repo("org/data", {"train.jsonl": b'{"text": "hi"}\\n'}, repo_type="dataset")
        os.environ["HF_ENDPOINT"] = hub.url
        snapshot_download("org/data", repo_type="dataset", endpoint=hub.url)

Every request is recorded (``hub.requests``) with the body bytes sent, so a test can check
what a client read: ``hub.file_gets("org/m", "model.safetensors")`` lists the GETs of one
file and ``hub.bytes_served(...)`` sums their bodies (e.g. that ranged reads fetched only
the asked bytes).

``huggingface_hub`` reads ``HF_ENDPOINT`` once at import, so code under test should pass
``endpoint=`` (or read the variable itself) rather than rely on the library default.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

REPO_TYPES = ("model", "dataset", "space")
# Suffixes the Hub stores through LFS by default (.gitattributes of a new repo), abridged.
DEFAULT_LFS_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".model",
    ".parquet",
    ".arrow",
    ".gguf",
    ".h5",
    ".msgpack",
    ".onnx",
    ".npy",
    ".npz",
    ".zip",
    ".gz",
    ".tar",
)
_TYPE_FROM_PLURAL = {"models": "model", "datasets": "dataset", "spaces": "space"}
_LFS_POINTER_SIZE = 134


def git_blob_id(data: bytes) -> str:
    """The git object id of a blob, which the Hub uses as a regular file's ETag."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class HubRepo:
    """One repository served by :class:`HubServer`.

    Attributes:
        repo_id: ``namespace/name`` (or a bare legacy name such as ``gpt2``).
        repo_type: ``model``, ``dataset`` or ``space``.
        files: Path in the repo -> content.
        token: The token that grants access (``Authorization: Bearer <token>``), for private
            or gated repos; None means anyone may download.
        gated: Downloads need ``token`` (401 without a token, 403 with another one), while
            the repo info and listing stay public, as for gated repos on the Hub.
        private: Every request needs ``token``; otherwise the repo looks missing.
        branch: The branch name that resolves to the single commit.
        lfs_suffixes: Files whose names end with one of these are served as LFS files.
    """

    repo_id: str
    repo_type: str = "model"
    files: dict[str, bytes] = field(default_factory=dict)
    token: str | None = None
    gated: bool = False
    private: bool = False
    branch: str = "main"
    lfs_suffixes: tuple[str, ...] = DEFAULT_LFS_SUFFIXES

    @property
    def sha(self) -> str:
        """The commit hash: a digest of every path and content, so edits change it."""
        digest = hashlib.sha1(f"{self.repo_type}:{self.repo_id}".encode())
        for path in sorted(self.files):
            digest.update(path.encode() + b"\0" + hashlib.sha256(self.files[path]).digest())
        return digest.hexdigest()

    def is_lfs(self, path: str) -> bool:
        """Whether ``path`` is served as an LFS file (``X-Linked-*`` headers, ``lfs`` info)."""
        return path.endswith(self.lfs_suffixes)

    def file_entry(self, path: str) -> dict:
        """The tree-API entry of one file."""
        data = self.files[path]
        entry = {"type": "file", "oid": git_blob_id(data), "size": len(data), "path": path}
        if self.is_lfs(path):
            entry["lfs"] = {
                "oid": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "pointerSize": _LFS_POINTER_SIZE,
            }
        return entry

    def folders(self) -> set[str]:
        """Every folder that holds a file, at any depth."""
        out = set()
        for path in self.files:
            parts = path.split("/")[:-1]
            out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        return out


class Headers(dict):
    """Request headers with case-insensitive lookup (clients differ in how they spell them)."""

    def __init__(self, items: object = ()) -> None:
        super().__init__((str(k).lower(), v) for k, v in dict(items).items())

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return super().__contains__(str(key).lower())

    def get(self, key: str, default: str | None = None) -> str | None:
        """The header's value, whatever the case of ``key``."""
        return super().get(key.lower(), default)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server answered, for tests that check what a client sent."""

    method: str
    path: str
    headers: Headers
    status: int
    bytes_sent: int = 0


class HubServer:
    """A threaded HTTP server on 127.0.0.1 (random port) serving :class:`HubRepo` objects.

    Args:
        repos: Optional repos to serve from the start; more can be added with
            :meth:`add_repo` at any time.
    """

    def __init__(self, repos: list[HubRepo] | None = None) -> None:
        self._repos: dict[tuple[str, str], HubRepo] = {}
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        for repo in repos or []:
            self._repos[(repo.repo_type, repo.repo_id)] = repo
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes | str],
        *,
        repo_type: str = "model",
        token: str | None = None,
        gated: bool = False,
        private: bool = False,
        branch: str = "main",
    ) -> HubRepo:
        """Serve a repo (replacing one with the same id and type); ``str`` files are UTF-8."""
        if repo_type not in REPO_TYPES:
            raise ValueError(f"repo_type must be one of {REPO_TYPES}, got {repo_type!r}")
        if (gated or private) and token is None:
            raise ValueError(f"Repo {repo_id!r}: a gated or private repo needs the token to grant")
        content = {p: d.encode() if isinstance(d, str) else bytes(d) for p, d in files.items()}
        repo = HubRepo(repo_id, repo_type, content, token, gated, private, branch)
        with self._lock:
            self._repos[(repo_type, repo_id)] = repo
        return repo

    def repo(self, repo_id: str, repo_type: str = "model") -> HubRepo:
        """The served repo, to edit its files or access settings in place."""
        return self._repos[(repo_type, repo_id)]

    @property
    def url(self) -> str:
        """The endpoint to use as ``HF_ENDPOINT``."""
        if self._httpd is None:
            raise RuntimeError("HubServer is not started; call start() or use it as a context")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        """Bind a free port and serve in a daemon thread."""
        handler = type("BoundHubHandler", (_HubHandler,), {"hub": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _find(self, repo_type: str, rest: str) -> tuple[str, str, HubRepo | None]:
        """Split ``rest`` into a repo id and the remainder, preferring served repo ids."""
        for (kind, repo_id), repo in self._repos.items():
            if kind == repo_type and (rest == repo_id or rest.startswith(repo_id + "/")):
                return repo_id, rest[len(repo_id) + 1 :], repo
        parts = rest.split("/")
        return "/".join(parts[:2]), "/".join(parts[2:]), None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def file_gets(
        self, repo_id: str, filename: str, repo_type: str = "model"
    ) -> list[RecordedRequest]:
        """The recorded GETs of one file's ``resolve/`` URL (any revision)."""
        prefix = {"model": "", "dataset": "/datasets", "space": "/spaces"}[repo_type]
        route = re.compile(rf"^{prefix}/{re.escape(repo_id)}/resolve/[^/]+/{re.escape(filename)}$")
        with self._lock:
            requests = list(self.requests)
        return [
            r for r in requests if r.method == "GET" and route.match(unquote(urlsplit(r.path).path))
        ]

    def bytes_served(self, repo_id: str, filename: str, repo_type: str = "model") -> int:
        """Body bytes sent by successful GETs of one file (what clients downloaded)."""
        return sum(
            r.bytes_sent for r in self.file_gets(repo_id, filename, repo_type) if r.status < 300
        )


class _HubError(Exception):
    def __init__(self, status: int, code: str | None, message: str, commit: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.commit = status, code, message, commit


class _HubHandler(BaseHTTPRequestHandler):
    """Routes one request; ``hub`` is bound to the owning :class:`HubServer`."""

    hub: HubServer
    protocol_version = "HTTP/1.1"
    _API = re.compile(r"^/api/(models|datasets|spaces)/(.+)$")
    _RESOLVE_PREFIX = re.compile(r"^/(?:(datasets|spaces)/)?(.+)$")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Keep test output quiet."""

    def do_HEAD(self) -> None:  # noqa: N802
        """File metadata (``hf_hub_download`` asks this first)."""
        self._dispatch(head=True)

    def do_GET(self) -> None:  # noqa: N802
        """Repo info, listings and file contents."""
        self._dispatch(head=False)

    def _dispatch(self, *, head: bool) -> None:
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        status = 500
        self._recorded = False
        try:
            api = self._API.match(split.path)
            if api and not head:
                status = self._api(_TYPE_FROM_PLURAL[api.group(1)], api.group(2), query)
            else:
                status = self._resolve(split.path, head=head)
        except _HubError as err:
            status = err.status
            headers = {"X-Error-Code": err.code} if err.code else {}
            if err.commit:
                headers["X-Repo-Commit"] = err.commit
            headers["X-Error-Message"] = err.message
            self._send(err.status, json.dumps({"error": err.message}).encode(), headers, head=head)
        finally:
            self._record_once(status, 0)

    def _record_once(self, status: int, bytes_sent: int) -> None:
        """Record this request once, before its answer is complete.

        So a client never sees an answer that ``hub.requests`` does not hold yet.
        """
        if not self._recorded:
            self._recorded = True
            self.hub._record(
                RecordedRequest(self.command, self.path, Headers(self.headers), status, bytes_sent)
            )

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth[len("Bearer ") :] if auth.startswith("Bearer ") else None

    def _repo(self, repo_type: str, rest: str, *, download: bool) -> tuple[HubRepo, str]:
        repo_id, remainder, repo = self.hub._find(repo_type, rest)
        token = self._token()
        if repo is None or (repo.private and token != repo.token):
            status = 404 if token else 401
            raise _HubError(status, "RepoNotFound", "Repository not found")
        if repo.gated and download and token != repo.token:
            if token is None:
                raise _HubError(
                    401,
                    "GatedRepo",
                    f"Access to {repo_type} {repo_id} is restricted. You must "
                    "have access to it and be authenticated to access it. Please log in.",
                )
            raise _HubError(
                403,
                "GatedRepo",
                f"Access to {repo_type} {repo_id} is restricted and you are "
                "not in the authorized list.",
            )
        return repo, remainder

    @staticmethod
    def _check_revision(repo: HubRepo, revision: str) -> None:
        if revision not in (repo.branch, repo.sha):
            raise _HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")

    def _api(self, repo_type: str, rest: str, query: dict[str, str]) -> int:
        repo, remainder = self._repo(repo_type, unquote(rest), download=False)
        if remainder.startswith("tree/"):
            revision, _, folder = remainder[len("tree/") :].partition("/")
            self._check_revision(repo, unquote(revision))
            recursive = query.get("recursive", "false").lower() in ("1", "true")
            return self._send_json(self._tree(repo, unquote(folder).strip("/"), recursive))
        if remainder.startswith("revision/"):
            self._check_revision(repo, unquote(remainder[len("revision/") :]))
        elif remainder:
            raise _HubError(404, None, f"Unknown API route {self.path}")
        return self._send_json(self._info(repo))

    @staticmethod
    def _info(repo: HubRepo) -> dict:
        siblings = []
        for path in sorted(repo.files):
            entry = repo.file_entry(path)
            sibling = {"rfilename": path, "size": entry["size"], "blobId": entry["oid"]}
            if "lfs" in entry:
                lfs = entry["lfs"]
                sibling["lfs"] = {
                    "sha256": lfs["oid"],
                    "size": lfs["size"],
                    "pointerSize": lfs["pointerSize"],
                }
            siblings.append(sibling)
        return {
            "_id": repo.sha[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0] if "/" in repo.repo_id else None,
            "sha": repo.sha,
            "private": repo.private,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "lastModified": "2024-01-01T00:00:00.000Z",
            "siblings": siblings,
        }

    @staticmethod
    def _tree(repo: HubRepo, folder: str, recursive: bool) -> list[dict]:
        prefix = f"{folder}/" if folder else ""
        folders = repo.folders()
        if folder and folder not in folders:
            raise _HubError(404, "EntryNotFound", f"Folder {folder} does not exist", repo.sha)

        def wanted(path: str) -> bool:
            if not path.startswith(prefix):
                return False
            return recursive or "/" not in path[len(prefix) :]

        entries = [
            {"type": "directory", "oid": git_blob_id(d.encode()), "size": 0, "path": d}
            for d in sorted(folders)
            if wanted(d)
        ]
        entries += [repo.file_entry(p) for p in sorted(repo.files) if wanted(p)]
        return entries

    def _resolve(self, path: str, *, head: bool) -> int:
        match = self._RESOLVE_PREFIX.match(path)
        repo_type = {"datasets": "dataset", "spaces": "space"}.get(match.group(1) or "", "model")
        rest = unquote(match.group(2))
        if "/resolve/" not in rest:
            raise _HubError(404, None, f"Unknown route {path}")
        repo, remainder = self._repo(repo_type, rest, download=True)
        if not remainder.startswith("resolve/"):
            raise _HubError(404, None, f"Unknown route {path}")
        revision, _, filename = remainder[len("resolve/") :].partition("/")
        self._check_revision(repo, revision)
        if filename not in repo.files:
            raise _HubError(404, "EntryNotFound", f"Entry not found: {filename}", repo.sha)
        data = repo.files[filename]
        entry = repo.file_entry(filename)
        headers = {
            "X-Repo-Commit": repo.sha,
            "ETag": f'"{entry["oid"]}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if "lfs" in entry:
            headers["X-Linked-Etag"] = f'"{entry["lfs"]["oid"]}"'
            headers["X-Linked-Size"] = str(len(data))
        status, body = 200, data
        byte_range = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if byte_range and not head:
            start = int(byte_range.group(1))
            end = int(byte_range.group(2)) if byte_range.group(2) else len(data) - 1
            if start >= len(data):
                headers["Content-Range"] = f"bytes */{len(data)}"
                self._send(416, b"", headers, head=False)
                return 416
            end = min(end, len(data) - 1)
            status, body = 206, data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        self._send(status, body, headers, head=head)
        return status

    def _send_json(self, payload: object) -> int:
        body = json.dumps(payload).encode()
        self._send(200, body, {"Content-Type": "application/json"}, head=False)
        return 200

    def _send(self, status: int, body: bytes, headers: dict[str, str], *, head: bool) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self._record_once(status, 0 if head else len(body))
        self.end_headers()
        if not head:
            self.wfile.write(body)
