import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestrator.datasets import load_rows

ROWS = [{"a": "one", "b": "1"}, {"a": "two", "b": "2"}, {"a": "three", "b": "3"}]


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ---- local files of each kind -------------------------------------------------------------


def test_json_list(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps(ROWS, indent=2))
    assert load_rows(str(path)) == ROWS


def test_json_lines_in_json_and_jsonl(tmp_path):
    for name in ("d.json", "d.jsonl"):
        path = write_jsonl(tmp_path / name, ROWS)
        assert load_rows(str(path)) == ROWS


def test_json_single_line_jsonl_and_columnar_and_field(tmp_path):
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps(ROWS[0]) + "\n")
    assert load_rows(str(one)) == [ROWS[0]]
    columnar = tmp_path / "columns.json"
    columnar.write_text(json.dumps({"a": ["one", "two", "three"], "b": ["1", "2", "3"]}))
    assert load_rows(str(columnar)) == ROWS
    nested = tmp_path / "nested.json"
    nested.write_text(json.dumps({"version": 2, "data": ROWS}))
    assert load_rows(str(nested), field="data") == ROWS


def test_csv(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('a,b\none,1\ntwo,2\n"three",3\n')
    assert load_rows(str(path)) == ROWS


def test_parquet(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    assert load_rows(str(path)) == ROWS


def test_txt_sample_by_line_paragraph_document(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("first line\nsecond line\n\n\nthird\n")
    assert load_rows(str(path)) == [
        {"text": "first line"},
        {"text": "second line"},
        {"text": "third"},
    ]
    assert load_rows(str(path), sample_by="paragraph") == [
        {"text": "first line\nsecond line"},
        {"text": "third"},
    ]
    assert load_rows(str(path), sample_by="document") == [{"text": path.read_text()}]


def test_folder_infers_splits_from_names(tmp_path):
    write_jsonl(tmp_path / "data" / "train-00000-of-00002.jsonl", ROWS[:2])
    write_jsonl(tmp_path / "data" / "train-00001-of-00002.jsonl", ROWS[2:])
    write_jsonl(tmp_path / "data" / "test.jsonl", [{"a": "t", "b": "0"}])
    write_jsonl(tmp_path / "validation" / "part.jsonl", [{"a": "v", "b": "9"}])
    (tmp_path / "README.md").write_text("# no yaml header\n")
    assert load_rows(str(tmp_path)) == ROWS
    assert load_rows(str(tmp_path), split="test") == [{"a": "t", "b": "0"}]
    assert load_rows(str(tmp_path), split="validation") == [{"a": "v", "b": "9"}]


def test_folder_without_split_names_is_train_in_most_common_format(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", ROWS[:1])
    write_jsonl(tmp_path / "b.jsonl", ROWS[1:])
    (tmp_path / "notes.txt").write_text("not data\n")
    assert load_rows(str(tmp_path)) == ROWS


def test_folder_readme_configs(tmp_path):
    write_jsonl(tmp_path / "x" / "first.jsonl", ROWS[:1])
    write_jsonl(tmp_path / "x" / "second.jsonl", ROWS[1:])
    write_jsonl(tmp_path / "y" / "other.jsonl", [{"a": "other", "b": "0"}])
    (tmp_path / "README.md").write_text(
        "---\nconfigs:\n- config_name: main\n  default: true\n  data_files:\n"
        "  - split: train\n    path: x/*.jsonl\n  - split: test\n    path: x/first.jsonl\n"
        "- config_name: extra\n  data_files: y/other.jsonl\n---\n# Card\n"
    )
    assert load_rows(str(tmp_path)) == ROWS
    assert load_rows(str(tmp_path), split="test") == ROWS[:1]
    assert load_rows(str(tmp_path), name="extra") == [{"a": "other", "b": "0"}]
    with pytest.raises(ValueError, match=r"name='nope' not found.*main, extra"):
        load_rows(str(tmp_path), name="nope")


def test_format_source_with_data_files_and_data_dir(tmp_path, monkeypatch):
    write_jsonl(tmp_path / "d1.jsonl", ROWS[:2])
    write_jsonl(tmp_path / "d2.jsonl", ROWS[2:])
    monkeypatch.chdir(tmp_path)
    assert load_rows("json", data_files="d1.jsonl") == ROWS[:2]
    assert load_rows("json", data_files=["d1.jsonl", "d2.jsonl"]) == ROWS
    assert load_rows("json", data_files="d*.jsonl") == ROWS
    assert (
        load_rows("json", data_files={"train": "d1.jsonl", "test": "d2.jsonl"}, split="test")
        == ROWS[2:]
    )
    assert load_rows("json", data_dir=str(tmp_path)) == ROWS
    # A format name reads files of any extension in that format.
    (tmp_path / "plain.data").write_text("hello\nworld\n")
    assert load_rows("text", data_files="plain.data") == [{"text": "hello"}, {"text": "world"}]


def test_split_slicing(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"i": i} for i in range(10)])
    assert [r["i"] for r in load_rows(str(path), split="train[:3]")] == [0, 1, 2]
    assert [r["i"] for r in load_rows(str(path), split="train[7:]")] == [7, 8, 9]
    assert [r["i"] for r in load_rows(str(path), split="train[:20%]")] == [0, 1]
    assert [r["i"] for r in load_rows(str(path), split="train[-10%:]")] == [9]


# ---- bad input -----------------------------------------------------------------------------


def test_missing_file_names_it(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_rows(str(missing))
    with pytest.raises(FileNotFoundError, match=r"missing/\*\.jsonl"):
        load_rows("json", data_files=str(tmp_path / "missing/*.jsonl"))
    with pytest.raises(FileNotFoundError, match="Dataset folder not found"):
        load_rows("json", data_dir=str(tmp_path / "nodir"))


def test_malformed_json_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2\n{"a": 3}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl, line 3: malformed JSON"):
        load_rows(str(path))
    doc = tmp_path / "bad.json"
    doc.write_text('[\n  {"a": 1},\n  {"a": }\n]')
    with pytest.raises(ValueError, match=r"bad\.json: malformed JSON at line 3"):
        load_rows(str(doc))
    not_object = tmp_path / "list.jsonl"
    not_object.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"list\.jsonl, line 2: expected a JSON object"):
        load_rows(str(not_object))


def test_unsupported_extension(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(ValueError, match=r"Unsupported dataset file extension '\.xlsx'.*\.jsonl"):
        load_rows(str(path))


def test_empty_folder_and_unknown_split_and_kwargs(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No dataset files in"):
        load_rows(str(tmp_path / "empty"))
    path = write_jsonl(tmp_path / "d.jsonl", ROWS)
    with pytest.raises(ValueError, match=r"Split 'test' not found.*available splits: train"):
        load_rows(str(path), split="test")
    with pytest.raises(ValueError, match=r"Unsupported dataset keyword\(s\) \['streaming'\]"):
        load_rows(str(path), streaming=True)
    with pytest.raises(ValueError, match="pass data_files"):
        load_rows("json")
    assert load_rows(str(path), trust_remote_code=True) == ROWS  # accepted, changes nothing


def test_csv_row_with_extra_values(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n1,2,3\n")
    with pytest.raises(ValueError, match=r"d\.csv, line 3: more values than the header"):
        load_rows(str(path))


# ---- the Hub, through the local test server -------------------------------------------------


def parquet_bytes(rows):
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue().to_pybytes()


def test_hub_dataset_repo(hub_env, tmp_path):
    hub_env.add_repo(
        "org/alpaca-mini",
        {
            "README.md": "# Mini\n",
            "data/train-00000-of-00001.parquet": parquet_bytes(ROWS),
            "data/test-00000-of-00001.parquet": parquet_bytes(ROWS[:1]),
        },
        repo_type="dataset",
    )
    assert load_rows("org/alpaca-mini") == ROWS
    assert load_rows("org/alpaca-mini", split="test") == ROWS[:1]
    cache = tmp_path / "hf_home" / "hub" / "datasets--org--alpaca-mini"
    assert cache.is_dir()  # downloaded through huggingface_hub into HF_HUB_CACHE
    paths = {r.path.split("?")[0] for r in hub_env.requests}
    assert "/api/datasets/org/alpaca-mini/revision/main" in paths


def test_hub_data_files_and_revision(hub_env):
    repo = hub_env.add_repo(
        "org/chat",
        {"a.jsonl": "".join(json.dumps(r) + "\n" for r in ROWS), "b.csv": "a,b\nx,y\n"},
        repo_type="dataset",
    )
    assert load_rows("org/chat", data_files="b.csv") == [{"a": "x", "b": "y"}]
    assert load_rows("org/chat", data_files="a.jsonl", revision=repo.sha) == ROWS


def test_hub_private_repo_uses_hf_token(hub_env, monkeypatch):
    hub_env.add_repo(
        "org/private",
        {"d.jsonl": json.dumps(ROWS[0]) + "\n"},
        repo_type="dataset",
        private=True,
        token="hf_secret",
    )
    with pytest.raises(FileNotFoundError, match="org/private.*HF_TOKEN"):
        load_rows("org/private")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    assert load_rows("org/private") == [ROWS[0]]
    assert any(r.headers.get("Authorization") == "Bearer hf_secret" for r in hub_env.requests)


def test_hub_gated_and_missing(hub_env, monkeypatch):
    hub_env.add_repo(
        "org/gated",
        {"d.jsonl": "{}\n"},
        repo_type="dataset",
        gated=True,
        token="hf_ok",
    )
    with pytest.raises(PermissionError, match="org/gated.*gated.*HF_TOKEN"):
        load_rows("org/gated")
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(PermissionError, match="gated"):
        load_rows("org/gated")
    with pytest.raises(FileNotFoundError, match="'org/nothing' is neither a local file"):
        load_rows("org/nothing")
    with pytest.raises(FileNotFoundError, match="no revision 'v9'"):
        load_rows("org/gated", revision="v9")
