"""A local S3 emulator (moto in server mode) that counts what it serves, for storage tests.

``S3Server`` runs moto's WSGI app on 127.0.0.1 (a free port) in a daemon thread, behind a
small middleware that

- records every request (method, bucket, key, ``Range`` header, status, body bytes sent), so a
  test can assert how many GETs an object took and how many of its bytes went over the wire
  (``gets(key)``, ``bytes_served(key)``); needed to prove that ranks read each weight once;
- can fail the next N requests with a chosen status (``fail_next(2, 503)``, optionally only
  for one key or method), to test retries against a transient outage;
- can slow GETs down (``slow_gets(0.3)``), so concurrent downloads surely overlap;
- can make moto check signatures (``enforce_auth()``): moto then answers 403 to any access key
  it did not issue through its own IAM, which is how wrong credentials look on real S3.

Example::

    with S3Server() as s3, s3.environment():  # AWS_ENDPOINT_URL, dummy credentials, region
        s3.create_bucket("b")
        ...
        assert s3.gets("b/model.safetensors") == 1

Requests go path-style (``/bucket/key``), as pyarrow and boto3 send them when an endpoint is
overridden.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from urllib.parse import unquote

from moto import settings as moto_settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

REGION = "us-east-1"
_INJECTED_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code>'
    b"<Message>injected by tests/s3_server.py</Message></Error>"
)
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass(frozen=True)
class S3Request:
    """One request the emulator answered.

    Attributes:
        method: HTTP method.
        key: ``bucket/key`` (or ``bucket`` for bucket-level calls, ``""`` for the service).
        range: The ``Range`` header, if any (``bytes=a-b``).
        status: The status code sent.
        bytes_sent: Body bytes sent back.
    """

    method: str
    key: str
    range: str | None
    status: int
    bytes_sent: int


class _CountingMiddleware:
    """Wraps moto's WSGI app: records requests and injects failures."""

    def __init__(self, app: object, server: S3Server) -> None:
        self.app = app
        self.server = server

    def __call__(self, environ: dict, start_response: object) -> Iterator[bytes]:
        method = environ["REQUEST_METHOD"]
        key = unquote(environ.get("PATH_INFO", "")).lstrip("/")
        byte_range = environ.get("HTTP_RANGE")
        if key.startswith("moto-api"):
            yield from self.app(environ, start_response)
            return
        injected = self.server._take_failure(method, key)
        if injected is not None:
            body = b"" if method == "HEAD" else _INJECTED_ERROR
            start_response(
                f"{injected} Injected",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
            )
            self.server._record(S3Request(method, key, byte_range, injected, len(body)))
            yield body
            return
        delay = self.server._delay_for(method, key)
        if delay:
            time.sleep(delay)
        status = [0]

        def recording_start_response(code: str, headers: list, exc_info: object = None):
            status[0] = int(code.split()[0])
            return start_response(code, headers, exc_info)

        # moto builds its answers in memory: take the whole body and record the request
        # before sending it, so a client never sees an answer that is not counted yet.
        result = self.app(environ, recording_start_response)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        sent = 0 if method == "HEAD" else len(body)
        self.server._record(S3Request(method, key, byte_range, status[0], sent))
        yield body


def _set_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


class S3Server:
    """moto's S3 on 127.0.0.1 with request counting; see the module docstring."""

    def __init__(self) -> None:
        self.requests: list[S3Request] = []
        self._lock = threading.Lock()
        self._failures: list[tuple[str | None, str | None, int]] = []
        self._delay: tuple[str | None, float] | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The endpoint, for ``AWS_ENDPOINT_URL``."""
        if self._server is None:
            raise RuntimeError("S3Server is not started; call start() or use it as a context")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> S3Server:
        """Bind a free port and serve in a daemon thread (werkzeug's request log silenced)."""
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        app = _CountingMiddleware(DomainDispatcherApplication(create_backend_app), self)
        self._server = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str | None]:
        """Environment variables pointing AWS clients here (None: unset the variable).

        Besides ``AWS_ENDPOINT_URL``, dummy credentials and the region, it hides the user's
        ``~/.aws`` files and profile and disables the EC2 metadata lookup, so nothing is
        sent anywhere but 127.0.0.1.
        """
        return {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": self.url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_ENDPOINT_URL_S3": None,
            "AWS_PROFILE": None,
            "AWS_SESSION_TOKEN": None,
        }

    @contextmanager
    def environment(self) -> Iterator[None]:
        """Apply :meth:`env` to ``os.environ``; restore the previous values after."""
        values = self.env()
        saved = {name: os.environ.get(name) for name in values}
        try:
            for name, value in values.items():
                _set_env(name, value)
            yield
        finally:
            for name, value in saved.items():
                _set_env(name, value)

    def client(self):
        """A boto3 S3 client for setting up fixtures (not the code under test)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def create_bucket(self, name: str) -> None:
        """Create a bucket (no-op if it exists)."""
        client = self.client()
        with suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=name)

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` at ``bucket/key`` directly, bypassing the counters' subject."""
        bucket, _, name = key.partition("/")
        self.client().put_object(Bucket=bucket, Key=name, Body=data)

    # Counting -------------------------------------------------------------------------
    def reset_counts(self) -> None:
        """Forget recorded requests (call before the operation a test measures)."""
        with self._lock:
            self.requests.clear()

    def object_requests(self, key: str, method: str = "GET") -> list[S3Request]:
        """Recorded requests for ``bucket/key`` with ``method``."""
        with self._lock:
            return [r for r in self.requests if r.key == key and r.method == method]

    def gets(self, key: str) -> int:
        """Number of GETs of the object ``bucket/key``."""
        return len(self.object_requests(key))

    def bytes_served(self, key: str) -> int:
        """Body bytes sent for GETs of ``bucket/key`` (successful ones only)."""
        return sum(r.bytes_sent for r in self.object_requests(key) if r.status < 300)

    # Fault injection ------------------------------------------------------------------
    def fail_next(
        self, count: int, status: int = 503, key: str | None = None, method: str | None = None
    ) -> None:
        """Answer the next ``count`` requests with ``status`` (only for ``key``/``method``)."""
        with self._lock:
            self._failures.extend([(key, method, status)] * count)

    @contextmanager
    def slow_gets(self, seconds: float, key: str | None = None) -> Iterator[None]:
        """Delay each GET (of ``key`` only, if given) by ``seconds`` inside the block.

        Makes concurrent downloads overlap for sure, e.g. to prove a lock lets only one
        through.
        """
        with self._lock:
            self._delay = (key, seconds)
        try:
            yield
        finally:
            with self._lock:
                self._delay = None

    def _delay_for(self, method: str, key: str) -> float:
        with self._lock:
            delay = self._delay
        if method != "GET" or delay is None or delay[0] not in (None, key):
            return 0.0
        return delay[1]

    def _take_failure(self, method: str, key: str) -> int | None:
        with self._lock:
            for i, (wanted_key, wanted_method, status) in enumerate(self._failures):
                if wanted_key in (None, key) and wanted_method in (None, method):
                    del self._failures[i]
                    return status
        return None

    def _record(self, request: S3Request) -> None:
        with self._lock:
            self.requests.append(request)

    @contextmanager
    def enforce_auth(self) -> Iterator[None]:
        """Make moto verify signatures, so keys it never issued get 403 (wrong credentials).

        The switch is process-wide moto state (the server runs in this process); it is
        restored on exit.
        """
        previous = moto_settings.INITIAL_NO_AUTH_ACTION_COUNT
        previous_count = ActionAuthenticatorMixin.request_count
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        ActionAuthenticatorMixin.request_count = 0
        try:
            yield
        finally:
            moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = previous
            ActionAuthenticatorMixin.request_count = previous_count
