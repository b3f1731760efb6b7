"""modeling.storage against local disk, a real S3 emulator (moto) and the local Hub stand-in."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save as save_safetensors

from modeling import storage
from modeling.storage import (
    RemoteNotFoundError,
    RemotePermissionError,
    RemoteUnreachableError,
    TransientStorageError,
)
from modeling.storage.ranges import Span

MIB = 1 << 20
REPO = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_port():
    """A port on 127.0.0.1 that accepts connections and never answers (a hung server)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for conn in accepted:
        conn.close()


@pytest.fixture
def bucket(s3):
    """A fresh bucket; yields its name."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(name)
    return name


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path):
    """A base location to write under: a local folder, or a prefix in a fresh bucket."""
    if request.param == "local":
        return str(tmp_path / "store")
    name = request.getfixturevalue("bucket")
    return f"s3://{name}/runs/r1"


# URIs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, scheme, bucket, key, revision, repo_type",
    [
        ("s3://b/x/y.json", "s3", "b", "x/y.json", None, None),
        ("s3://b", "s3", "b", "", None, None),
        ("gs://b/x/", "gs", "b", "x", None, None),
        ("hf://org/m", "hf", "org/m", "", None, "model"),
        ("hf://org/m@v1.0/tok/a.model", "hf", "org/m", "tok/a.model", "v1.0", "model"),
        ("hf://datasets/org/d@main/train.jsonl", "hf", "org/d", "train.jsonl", "main", "dataset"),
        ("hf://org/m@refs/pr/3/config.json", "hf", "org/m", "config.json", "refs/pr/3", "model"),
        ("hf://org/m@feature%2Fx/a", "hf", "org/m", "a", "feature/x", "model"),
        ("/tmp/a/b", "file", "", "/tmp/a/b", None, None),
        ("file:///tmp/a", "file", "", "/tmp/a", None, None),
    ],
)
def test_parse(text, scheme, bucket, key, revision, repo_type):
    parsed = storage.parse(text)
    assert (parsed.scheme, parsed.bucket, parsed.key) == (scheme, bucket, key)
    assert (parsed.revision, parsed.repo_type) == (revision, repo_type)
    assert storage.is_remote(text) == (scheme != "file")
    if parsed.is_remote:
        assert storage.parse(str(parsed)) == parsed


@pytest.mark.parametrize(
    "text, message",
    [
        ("http://host/x", "Unsupported URI"),
        ("s3:///key", "names no bucket"),
        ("hf://gpt2", "names no repository"),
        ("hf://org/m@/x", "empty repo name or revision"),
        ("hf://buckets/org/b/x", "buckets are not supported"),
    ],
)
def test_parse_rejects_bad_uris(text, message):
    with pytest.raises(ValueError, match=message) as info:
        storage.parse(text)
    assert text in str(info.value)


def test_join_parent_name_keep_the_uri_form():
    assert storage.join("s3://b/x", "y", "z.json") == "s3://b/x/y/z.json"
    assert storage.join("s3://b/x/", "/y/", "", "z") == "s3://b/x/y/z"
    assert storage.join("s3://b", "k") == "s3://b/k"
    assert storage.join("gs://b/p", "a/b") == "gs://b/p/a/b"
    assert storage.join("hf://org/m@v1", "tok", "a.model") == "hf://org/m@v1/tok/a.model"
    assert storage.join("/tmp/a", "b", "c") == "/tmp/a/b/c"
    assert str(Path("s3://b/x")) == "s3:/b/x"  # what join must never do
    assert storage.parent("s3://b/x/y.json") == "s3://b/x"
    assert storage.parent("s3://b/x") == "s3://b"
    assert storage.parent("s3://b") == "s3://b"
    assert storage.parent("hf://datasets/org/d@v2/a/b.json") == "hf://datasets/org/d@v2/a"
    assert storage.parent("hf://org/m/a") == "hf://org/m"
    assert storage.parent("/tmp/a/b") == "/tmp/a" and storage.parent("rel") == "."
    assert storage.name("s3://b/x/y.json") == "y.json"
    assert storage.name("s3://b/x/") == "x"
    assert storage.name("s3://b") == "b"
    assert storage.name("hf://org/m@v1") == "m"
    assert storage.name("/tmp/a/b/") == "b"


# Round trips (local and S3 through the same code path) ----------------------------------


def test_round_trip(root):
    config = storage.join(root, "cfg", "config.json")
    storage.write_text(config, '{"a": 1}')
    storage.write_bytes(storage.join(root, "w.bin"), b"\x00\x01" * 10)
    assert json.loads(storage.read_text(config)) == {"a": 1}
    assert storage.read_bytes(storage.join(root, "w.bin")) == b"\x00\x01" * 10
    assert storage.size(storage.join(root, "w.bin")) == 20
    with pytest.raises(ValueError, match="is a folder"):
        storage.size(storage.join(root, "cfg"))
    assert storage.exists(config) and storage.exists(storage.join(root, "cfg"))
    assert storage.is_dir(storage.join(root, "cfg")) and not storage.is_dir(config)
    assert not storage.exists(storage.join(root, "nope.json"))
    assert storage.list_dir(root) == ["cfg", "w.bin"]
    assert storage.list_files(root) == ["cfg/config.json", "w.bin"]
    with storage.open_input(storage.join(root, "w.bin")) as handle:
        assert handle.size() == 20 and handle.read_at(3, 1) == b"\x01\x00\x01"
    storage.write_text(config, "replaced")
    assert storage.read_text(config) == "replaced"
    storage.delete_tree(storage.join(root, "cfg"))
    assert not storage.exists(config) and storage.list_dir(root) == ["w.bin"]
    storage.delete_tree(storage.join(root, "cfg"))  # already gone: fine
    storage.delete_tree(root)
    assert not storage.exists(storage.join(root, "w.bin"))


def test_upload_dir(root, tmp_path):
    src = tmp_path / "src"
    files = {f"shard-{i}.bin": bytes([i]) * (1000 + i) for i in range(12)}
    files |= {"tok/tokenizer.model": b"sp", "tok/deep/er.json": b"{}"}
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    dest = storage.join(root, "out")
    assert storage.upload_dir(src, dest, max_workers=4) == sorted(files)
    assert storage.list_files(dest) == sorted(files)
    assert all(storage.read_bytes(storage.join(dest, r)) == d for r, d in files.items())


def test_failed_write_leaves_nothing(root):
    target = storage.join(root, "partial.bin")
    with pytest.raises(RuntimeError, match="boom"), storage.open_output(target) as out:
        out.write(b"half")
        raise RuntimeError("boom")
    assert not storage.exists(target)
    if not storage.is_remote(root):
        assert list(Path(root).iterdir()) == []  # no temporary file left either


def test_delete_tree_refuses_a_bucket_root(bucket):
    storage.write_bytes(f"s3://{bucket}/a", b"1")
    with pytest.raises(ValueError, match="whole bucket"):
        storage.delete_tree(f"s3://{bucket}")
    assert storage.exists(f"s3://{bucket}/a")


def test_filesystem_is_cached_per_endpoint(s3, bucket, monkeypatch):
    fs, path = storage.filesystem("s3://b/k/x")
    assert path == "b/k/x" and storage.filesystem("s3://other/y")[0] is fs
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert storage.filesystem("s3://b/k/x")[0] is not fs
    # The service-specific variable wins over AWS_ENDPOINT_URL, as in the AWS CLI.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    storage.write_bytes(f"s3://{bucket}/k", b"1")
    assert storage.read_bytes(f"s3://{bucket}/k") == b"1"
    local, local_path = storage.filesystem("rel/x")
    assert local_path == str(Path("rel/x").absolute())


# Ranged reads ---------------------------------------------------------------------------


def test_coalesce_merges_near_splits_long():
    assert storage.coalesce([(100, 10), (0, 10), (20, 5)], max_gap=16) == [
        Span(0, 25),
        Span(100, 10),
    ]
    assert storage.coalesce([(0, 10), (5, 10), (12, 0)], max_gap=0) == [Span(0, 15)]
    assert storage.coalesce([(0, 10), (10, 10)], max_gap=0) == [Span(0, 20)]  # adjacent
    assert storage.coalesce([(0, 10)], max_request=4) == [Span(0, 4), Span(4, 4), Span(8, 2)]
    assert storage.coalesce([]) == []


def test_ranged_reads_are_exact_and_coalesced(s3, bucket):
    data = np.random.default_rng(0).integers(0, 256, 4 * MIB, dtype=np.uint8).tobytes()
    key = f"{bucket}/blob.bin"
    s3.put(key, data)
    near = [(10, 100), (300, 50), (200_000, 1000)]  # gaps < 1 MiB: one GET
    far = [(3 * MIB, 4096), (3 * MIB + 10, 5)]  # > 1 MiB away: a second GET
    ranges = near + far + [(0, 0)]
    s3.reset_counts()
    out = storage.read_ranges(f"s3://{bucket}/blob.bin", ranges)
    assert out == [data[o : o + n] for o, n in ranges]
    assert s3.gets(key) == 2
    assert s3.bytes_served(key) == (200_000 + 1000 - 10) + 4096
    assert len(s3.object_requests(key, "HEAD")) == 1
    s3.reset_counts()
    out = storage.read_ranges(f"s3://{bucket}/blob.bin", near, max_gap=0)
    assert out == [data[o : o + n] for o, n in near]
    assert s3.gets(key) == 3 and s3.bytes_served(key) == 1150
    assert sorted(r.range for r in s3.object_requests(key)) == sorted(
        f"bytes={o}-{o + n - 1}" for o, n in near
    )


def test_ranged_read_past_the_end_names_the_object(s3, bucket):
    s3.put(f"{bucket}/small", b"0123")
    with pytest.raises(ValueError, match=rf"ends past the end of s3://{bucket}/small \(4 bytes\)"):
        storage.read_ranges(f"s3://{bucket}/small", [(2, 3)])


def test_safetensors_header_then_only_a_ranks_rows(s3, bucket):
    tensors = {
        "embed": np.arange(64 * 16, dtype=np.float32).reshape(64, 16),
        "norm": np.ones(16, dtype=np.float32),
        "out": np.arange(64 * 16, dtype=np.float32).reshape(64, 16) * -1,
    }
    key = f"{bucket}/model.safetensors"
    s3.put(key, save_safetensors(tensors))
    s3.reset_counts()
    with storage.RangeReader(f"s3://{key}", max_gap=0) as reader:
        (prefix,) = reader.read([(0, 8)])
        header_len = int.from_bytes(prefix, "little")
        header = json.loads(reader.read([(8, header_len)])[0])
        base = 8 + header_len
        rows = slice(16, 32)  # rank 1 of 4 owns rows 16..31 of each matrix
        wanted = []
        for name in ("embed", "out"):
            start, _ = header[name]["data_offsets"]
            row_bytes = 16 * 4
            wanted.append(
                (base + start + rows.start * row_bytes, (rows.stop - rows.start) * row_bytes)
            )
        blobs = reader.read(wanted)
    for name, blob in zip(("embed", "out"), blobs, strict=True):
        got = np.frombuffer(blob, dtype=np.float32).reshape(-1, 16)
        np.testing.assert_array_equal(got, tensors[name][rows])
    assert s3.gets(key) == 4  # prefix, header, one run of rows per matrix
    assert s3.bytes_served(key) == 8 + header_len + sum(n for _, n in wanted)


def test_retries_recover_from_transient_failures(s3, bucket):
    key = f"{bucket}/flaky.bin"
    s3.put(key, b"x" * 1000)
    s3.reset_counts()
    # pyarrow retries the HEAD that opens the object 3 times itself; ranges.with_retries
    # recovers the 4th failure. A 5xx on a ranged GET whose error body is longer than the
    # range fails in pyarrow at once ("Failed to flush response stream"), so only
    # with_retries retries it.
    s3.fail_next(4, status=503, key=key, method="HEAD")
    s3.fail_next(3, status=500, key=key, method="GET")
    assert storage.read_ranges(f"s3://{key}", [(10, 5)]) == [b"x" * 5]
    heads = [r.status for r in s3.object_requests(key, "HEAD")]
    gets = [r.status for r in s3.object_requests(key, "GET")]
    assert heads == [503] * 4 + [200] and gets == [500] * 3 + [206]


def test_with_retries_backs_off_on_transient_only():
    calls = []

    def flaky():
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ConnectionResetError("Connection reset by peer")
        return "ok"

    assert storage.with_retries(flaky, "s3://b/k", base_delay=0.01) == "ok"
    # Backoff doubles from base_delay (with jitter in [0.5, 1]): at least 5 ms, then 10 ms.
    assert len(calls) == 3 and calls[1] - calls[0] >= 0.005 and calls[2] - calls[1] >= 0.01

    def server_error():
        calls.append(1)
        raise OSError("AWS Error SLOW_DOWN during GetObject operation: HTTP status 503")

    calls.clear()
    with pytest.raises(TransientStorageError, match="s3://b/k") as info:
        storage.with_retries(server_error, "s3://b/k", attempts=3, base_delay=0)
    assert len(calls) == 3 and "try again later" in str(info.value)

    def missing():
        calls.append(1)
        raise FileNotFoundError("Path does not exist 'b/k'")

    calls.clear()
    with pytest.raises(RemoteNotFoundError, match="s3://b/k does not exist"):
        storage.with_retries(missing, "s3://b/k", base_delay=0)
    assert len(calls) == 1

    def denied():
        calls.append(1)
        raise OSError("AWS Error ACCESS_DENIED during HeadObject operation: HTTP status 403")

    calls.clear()
    with pytest.raises(RemotePermissionError):
        storage.with_retries(denied, "s3://b/k", base_delay=0)
    assert len(calls) == 1


# Clear errors ---------------------------------------------------------------------------


def assert_clean(err: BaseException) -> None:
    """One message, no chained pyarrow/httpx traceback."""
    assert err.__cause__ is None and (err.__suppress_context__ or err.__context__ is None)


def test_missing_object_and_bucket(s3, bucket):
    for call in (storage.read_bytes, storage.size, storage.open_input, storage.cached_local_copy):
        with pytest.raises(RemoteNotFoundError, match=rf"s3://{bucket}/nope.json does not exist"):
            call(f"s3://{bucket}/nope.json")
    with pytest.raises(FileNotFoundError, match="no bucket 'no-such-bucket'") as info:
        storage.read_bytes("s3://no-such-bucket/model/config.json")
    assert "create the bucket" in str(info.value) and s3.url in str(info.value)
    assert_clean(info.value)
    with pytest.raises(RemoteNotFoundError, match="no bucket 'no-such-bucket'"):
        storage.write_bytes("s3://no-such-bucket/x", b"1")
    with pytest.raises(RemoteNotFoundError):
        storage.list_dir(f"s3://{bucket}/no/prefix")


def test_wrong_credentials(s3, bucket):
    storage.write_bytes(f"s3://{bucket}/a.json", b"{}")
    with s3.enforce_auth():  # moto now rejects the dummy key as real S3 would
        for call in (storage.read_bytes, storage.exists, storage.list_dir):
            with pytest.raises(RemotePermissionError, match=f"Access denied to s3://{bucket}"):
                call(f"s3://{bucket}/a.json")
        with pytest.raises(PermissionError, match="AWS_ACCESS_KEY_ID") as info:
            storage.write_bytes(f"s3://{bucket}/b.json", b"{}")
    assert_clean(info.value)


def test_unreachable_s3_endpoint_fails_fast(s3, monkeypatch):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    start = time.monotonic()
    with pytest.raises(RemoteUnreachableError, match="Cannot reach") as info:
        storage.read_ranges("s3://bkt/model.safetensors", [(0, 8)])
    assert time.monotonic() - start < 10
    assert endpoint in str(info.value) and "AWS_ENDPOINT_URL" in str(info.value)
    assert isinstance(info.value, ConnectionError)
    assert_clean(info.value)
    with pytest.raises(RemoteUnreachableError):
        storage.exists("s3://bkt/x")  # not a silent False


def test_silent_s3_endpoint_fails_fast(s3, silent_port, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{silent_port}")
    start = time.monotonic()
    with pytest.raises(RemoteUnreachableError, match="Cannot reach"):
        storage.read_bytes("s3://bkt/config.json")
    assert time.monotonic() - start < 5


def test_silent_gcs_endpoint_fails_fast(silent_port, monkeypatch):
    # pyarrow's GCS client has no timeouts: the probe's own deadline is what stops it.
    monkeypatch.setattr("modeling.storage.backends.PROBE_TIMEOUT_S", 1.0)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{silent_port}")
    with pytest.raises(RemoteUnreachableError, match="no answer within 1 s"):
        storage.read_bytes("gs://bkt/config.json")


def test_unreachable_gcs_emulator_fails_fast(monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{closed_port()}")
    start = time.monotonic()
    with pytest.raises(RemoteUnreachableError, match="STORAGE_EMULATOR_HOST") as info:
        storage.read_bytes("gs://bkt/config.json")
    assert time.monotonic() - start < 10 and "gs://bkt/config.json" in str(info.value)


# hf:// (through tests/hub_server.py) ----------------------------------------------------

WEIGHTS = np.random.default_rng(1).integers(0, 256, 3 * MIB, dtype=np.uint8).tobytes()


@pytest.fixture
def hub(hub_env):
    hub_env.add_repo(
        "org/tiny",
        {"config.json": '{"dim": 8}', "model.safetensors": WEIGHTS, "tok/t.model": b"sp"},
    )
    hub_env.add_repo("org/data", {"train.jsonl": '{"x": 1}\n'}, repo_type="dataset")
    hub_env.add_repo("org/gated", {"w.bin": b"12"}, gated=True, token="hf_granted")
    return hub_env


def test_hf_reads(hub):
    sha = hub.repo("org/tiny").sha
    assert json.loads(storage.read_text("hf://org/tiny/config.json")) == {"dim": 8}
    assert storage.read_text(f"hf://org/tiny@{sha}/config.json") == '{"dim": 8}'
    assert storage.read_text("hf://datasets/org/data@main/train.jsonl") == '{"x": 1}\n'
    assert storage.list_dir("hf://org/tiny") == ["config.json", "model.safetensors", "tok"]
    assert storage.list_files("hf://org/tiny/tok") == ["t.model"]
    assert storage.size("hf://org/tiny/model.safetensors") == len(WEIGHTS)
    assert storage.is_dir("hf://org/tiny/tok") and not storage.exists("hf://org/tiny/nope")


def test_hf_ranged_reads_fetch_only_the_asked_bytes(hub):
    ranges = [(0, 8), (100, 16), (2 * MIB, 1000)]
    out = storage.read_ranges("hf://org/tiny/model.safetensors", ranges, max_gap=0)
    assert out == [WEIGHTS[o : o + n] for o, n in ranges]
    gets = hub.file_gets("org/tiny", "model.safetensors")
    assert sorted(r.headers.get("Range") for r in gets) == sorted(
        f"bytes={o}-{o + n - 1}" for o, n in ranges
    )
    assert {r.status for r in gets} == {206}
    assert hub.bytes_served("org/tiny", "model.safetensors") == 8 + 16 + 1000
    before = len(hub.file_gets("org/tiny", "model.safetensors"))
    storage.read_ranges("hf://org/tiny/model.safetensors", ranges)  # first two share a GET
    assert len(hub.file_gets("org/tiny", "model.safetensors")) == before + 2


def test_hf_errors_name_the_fix(hub, monkeypatch):
    cases = [
        ("hf://org/missing/config.json", RemoteNotFoundError, "repository 'org/missing' not found"),
        ("hf://org/tiny@nope/config.json", RemoteNotFoundError, "revision does not exist"),
        ("hf://org/tiny/nope.json", RemoteNotFoundError, "does not exist in org/tiny"),
        ("hf://org/gated/w.bin", RemotePermissionError, "accept its licence"),
    ]
    for uri, kind, message in cases:
        for call in (storage.read_bytes, lambda u: storage.read_ranges(u, [(0, 1)])):
            with pytest.raises(kind, match=message) as info:
                call(uri)
            assert uri in str(info.value)
            assert_clean(info.value)
    assert f"{hub.url}/org/gated" in str(info.value) and "HF_TOKEN" in str(info.value)
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(RemotePermissionError, match="HF_TOKEN"):
        storage.read_bytes("hf://org/gated/w.bin")
    monkeypatch.setenv("HF_TOKEN", "hf_granted")
    assert storage.read_bytes("hf://org/gated/w.bin") == b"12"


def test_hf_is_read_only(hub, tmp_path):
    (tmp_path / "f").write_text("x")
    for call in (
        lambda: storage.write_bytes("hf://org/tiny/x", b""),
        lambda: storage.open_output("hf://org/tiny/x").__enter__(),
        lambda: storage.upload_dir(tmp_path, "hf://org/tiny/out"),
        lambda: storage.delete_tree("hf://org/tiny/tok"),
    ):
        with pytest.raises(ValueError, match="hf:// URIs are read-only"):
            call()


def test_unreachable_hub_fails_fast(hub_env, monkeypatch):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    start = time.monotonic()
    with pytest.raises(RemoteUnreachableError, match="HF_ENDPOINT") as info:
        storage.read_bytes("hf://org/tiny/config.json")
    assert time.monotonic() - start < 10 and endpoint in str(info.value)


# Node-local cache -----------------------------------------------------------------------


def ask_at_once(fn, count: int = 4) -> list:
    """Run ``fn`` in ``count`` threads released together; return their results."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn()
        except Exception as err:  # re-raised below, in the test's thread
            results[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


def test_cached_local_copy_downloads_once_per_node(s3, bucket, tmp_path):
    key = f"{bucket}/tok/tokenizer.model"
    s3.put(key, b"sentencepiece" * 1000)
    cache = tmp_path / "cache"
    with s3.slow_gets(0.3, key):  # the four downloads would overlap without the lock
        paths = ask_at_once(lambda: storage.cached_local_copy(f"s3://{key}", cache))
    assert len(set(paths)) == 1 and paths[0].name == "tokenizer.model"
    assert paths[0].read_bytes() == b"sentencepiece" * 1000
    assert s3.gets(key) == 1
    assert storage.cached_local_copy(f"s3://{key}", cache) == paths[0] and s3.gets(key) == 1
    assert not [p for p in cache.rglob("*") if ".tmp-" in p.name]
    s3.put(key, b"changed")  # a new object (size, mtime) is fetched again
    fresh = storage.cached_local_copy(f"s3://{key}", cache)
    assert fresh != paths[0] and fresh.read_bytes() == b"changed" and s3.gets(key) == 2


def test_cached_local_dir_downloads_each_file_once(s3, bucket, tmp_path):
    files = {"tokenizer.json": b"{}", "special/map.json": b"[1]", "tokenizer.model": b"sp" * 99}
    for rel, data in files.items():
        s3.put(f"{bucket}/tok/{rel}", data)
    s3.reset_counts()
    with s3.slow_gets(0.2):
        dirs = ask_at_once(lambda: storage.cached_local_dir(f"s3://{bucket}/tok", tmp_path / "c"))
    assert len(set(dirs)) == 1 and dirs[0].name == "tok"
    paths = [p for p in dirs[0].rglob("*") if p.is_file()]
    assert {p.relative_to(dirs[0]).as_posix(): p.read_bytes() for p in paths} == files
    assert all(s3.gets(f"{bucket}/tok/{rel}") == 1 for rel in files)


CHILD = "import sys; from modeling.storage import cached_local_copy as c; print(c(*sys.argv[1:]))"


def test_cached_local_copy_two_processes_fetch_once(s3, bucket, tmp_path):
    key = f"{bucket}/data/train.jsonl"
    s3.put(key, b'{"text": "hi"}\n' * 100)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-c", CHILD, f"s3://{key}", str(tmp_path / "cache")]
    with s3.slow_gets(1.0, key):  # the second process asks while the first downloads
        procs = [subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE) for _ in "ab"]
        outs = [p.communicate(timeout=60)[0].decode().strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0] and outs[0] == outs[1]
    assert Path(outs[0]).read_bytes() == b'{"text": "hi"}\n' * 100
    assert s3.gets(key) == 1


def test_cache_default_dir_local_paths_and_hf(hub, monkeypatch, tmp_path):
    monkeypatch.setenv("TUNEFLEET_CACHE", str(tmp_path / "tf"))
    assert storage.cache_root() == tmp_path / "tf" / "storage"
    local = tmp_path / "local.json"
    assert (
        storage.cached_local_copy(local) == local and storage.cached_local_dir(tmp_path) == tmp_path
    )
    copy = storage.cached_local_copy("hf://org/tiny/config.json")
    assert copy.is_relative_to(tmp_path / "tf" / "storage") and copy.read_text() == '{"dim": 8}'
    tok = storage.cached_local_dir("hf://org/tiny/tok")
    assert (tok / "t.model").read_bytes() == b"sp"
    storage.cached_local_copy("hf://org/tiny/config.json")
    assert len(hub.file_gets("org/tiny", "config.json")) == 1
    with pytest.raises(ValueError, match="use cached_local_dir"):
        storage.cached_local_copy("hf://org/tiny/tok")
    with pytest.raises(RemoteNotFoundError, match="hf://org/tiny/nope"):
        storage.cached_local_dir("hf://org/tiny/nope")
