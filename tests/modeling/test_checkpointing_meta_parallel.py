"""Model-parallel Meta checkpoints (Llama 3's and Llama 2's layouts), their load memory,
and the streamed ``consolidated.00.pth`` writer."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from modeling.checkpointing import FullModelHFCheckpointer, FullModelMetaCheckpointer
from modeling.checkpointing.torch_archive import TorchArchiveWriter
from modeling.convert import MetaKeyMapper
from modeling.llama3 import llama3
from tests.modeling.checkpoint_fixtures import build, logits, saved_hf
from tests.modeling.test_checkpointing_meta import write_meta

pytest.importorskip("transformers")

MB = 2**20
# How Meta's model-parallel ranks split each tensor, as transformers'
# convert_llama_weights_to_hf concatenates them: column-parallel along dim 0, row-parallel
# along dim 1, norms replicated; the embedding along the vocabulary for Llama 3
# (VocabParallelEmbedding) and along the embedding dim for Llama 2 (ParallelEmbedding).
META_SPLITS = {"wq": 0, "wk": 0, "wv": 0, "w1": 0, "w3": 0, "output": 0, "wo": 1, "w2": 1}
EMBEDDING_SPLIT = {"llama3": 0, "llama2": 1}


def meta_split_dim(family: str, meta_key: str) -> int | None:
    if meta_key == "tok_embeddings.weight":
        return EMBEDDING_SPLIT[family]
    return META_SPLITS.get(meta_key.removesuffix(".weight").rsplit(".", 1)[-1])


def split_like_meta(family: str, single: Path, directory: Path, ranks: int) -> Path:
    """Split a one-file Meta checkpoint into ``ranks`` files the way Meta's MP ranks hold it."""
    whole = torch.load(single / "consolidated.00.pth", weights_only=True)
    directory.mkdir(parents=True)
    for rank in range(ranks):
        part = {}
        for key, tensor in whole.items():
            dim = meta_split_dim(family, key)
            part[key] = tensor if dim is None else tensor.chunk(ranks, dim=dim)[rank].clone()
        torch.save(part, directory / f"consolidated.{rank:02d}.pth")
    for name in ("params.json", "tokenizer.model"):
        (directory / name).write_bytes((single / name).read_bytes())
    return directory


@pytest.fixture(scope="module", params=["llama3", "llama2"])
def meta_checkpoints(request, tmp_path_factory):
    """A family's one-file Meta checkpoint and its 2- and 4-file model-parallel splits."""
    family = request.param
    root = tmp_path_factory.mktemp(f"meta-{family}")
    _, hf_dir = saved_hf(family, root / "hf")
    state = FullModelHFCheckpointer(hf_dir, model_type=family).load_checkpoint()
    single = write_meta(family, state, root / "one")
    splits = {n: split_like_meta(family, single, root / f"mp{n}", n) for n in (2, 4)}
    return family, single, splits


def test_model_parallel_meta_checkpoints_load_like_the_single_file(meta_checkpoints):
    family, single, splits = meta_checkpoints
    expected = FullModelMetaCheckpointer(single, model_type=family).load_checkpoint()
    reference = build(family)
    reference.load_state_dict(expected)
    for ranks, directory in splits.items():
        whole = torch.load(directory / "consolidated.00.pth", weights_only=True)
        assert whole["tok_embeddings.weight"].shape != expected["tok_embeddings.weight"].shape
        loaded = FullModelMetaCheckpointer(directory, model_type=family).load_checkpoint()
        assert loaded.keys() == expected.keys()
        for key in expected:
            assert torch.equal(loaded[key], expected[key]), (ranks, key)
        model = build(family)
        model.load_state_dict(loaded)
        assert torch.equal(logits(model), logits(reference))


def test_model_parallel_rows_equal_slices_of_the_single_file(meta_checkpoints):
    family, single, splits = meta_checkpoints
    expected = FullModelMetaCheckpointer(single, model_type=family).load_checkpoint()
    ckpt = FullModelMetaCheckpointer(splits[4], model_type=family)
    for key in ("tok_embeddings.weight", "output.weight", "layers.0.attn.output_proj.weight"):
        rows = len(expected[key])
        for start, stop in ((0, rows), (5, rows // 2 + 3), (rows - 1, rows), (4, 4)):
            assert torch.equal(ckpt.read_rows(key, start, stop), expected[key][start:stop])


def test_a_meta_checkpoint_read_as_the_wrong_release_names_the_model_type(meta_checkpoints):
    family, _, splits = meta_checkpoints
    wrong, fix = (
        ("llama2", r"\['llama3', 'llama3_2'\]") if family == "llama3" else ("llama3", "'llama2'")
    )
    with pytest.raises(
        ValueError,
        match=rf"'tok_embeddings.weight' is split into 2 slices .* does not fit model_type "
        rf"'{wrong}'.*set model_type to one of .*{fix}",
    ):
        FullModelMetaCheckpointer(splits[2], model_type=wrong).load_checkpoint()


def test_slices_that_do_not_fit_together_are_refused(tmp_path):
    for rank, rows in enumerate((4, 6)):
        torch.save(
            {"output.weight": torch.zeros(rows, 8 + rank)}, tmp_path / f"consolidated.0{rank}.pth"
        )
    (tmp_path / "params.json").write_text(json.dumps({"dim": 8}))
    with pytest.raises(
        ValueError, match=r"'output.weight' has slices of shapes \[\(4, 8\), \(6, 9\)\]"
    ):
        FullModelMetaCheckpointer(tmp_path).read_rows("output.weight")


def test_streamed_archive_has_torch_saves_records_and_loads_memory_mapped(tmp_path):
    torch.manual_seed(0)
    base = torch.randn(10, 6)
    tensors = {
        "w": torch.randn(16, 8),
        "bf16": torch.randn(5).to(torch.bfloat16),
        "half": torch.ones(2, 3, dtype=torch.float16),
        "rows": base[2:5],  # a view into a bigger storage: only its rows are written
        "empty": torch.zeros(0, 3),
        "scalar": torch.tensor(3.0),
        "uint16": torch.arange(6).to(torch.uint16),  # a dtype torch saves untyped
    }
    torch.save({k: v.clone() for k, v in tensors.items()}, tmp_path / "saved.pth")
    with TorchArchiveWriter(tmp_path / "streamed.pth") as archive:
        for key, tensor in tensors.items():
            archive.add(key, tensor)
    loaded = torch.load(tmp_path / "streamed.pth", weights_only=True, mmap=True)
    assert list(loaded) == list(tensors)
    for key, tensor in tensors.items():
        assert loaded[key].dtype == tensor.dtype and torch.equal(loaded[key], tensor), key
    saved, streamed = (
        zipfile.ZipFile(tmp_path / "saved.pth"),
        zipfile.ZipFile(tmp_path / "streamed.pth"),
    )
    records = {name.split("/", 1)[1] for name in saved.namelist()} - {".data/serialization_id"}
    assert records == {name.split("/", 1)[1] for name in streamed.namelist()} - {
        ".data/serialization_id"
    }
    for record in records:  # byte for byte what torch.save writes, pickle included
        assert saved.read(f"saved/{record}") == streamed.read(f"streamed/{record}"), record
    twice = pytest.raises(ValueError, match=r"tensor 'w' was already written")
    with twice, TorchArchiveWriter(tmp_path / "twice.pth") as archive:
        archive.add("w", tensors["w"])
        archive.add("w", tensors["w"])


def test_meta_save_checkpoint_equals_torch_save(tmp_path):
    _, hf_dir = saved_hf("llama3", tmp_path / "hf")
    state = FullModelHFCheckpointer(hf_dir, model_type="llama3").load_checkpoint()
    single = write_meta("llama3", state, tmp_path / "one")
    out = FullModelMetaCheckpointer(single, output_dir=tmp_path / "out").save_checkpoint(state)
    written = torch.load(out["merged"] / "consolidated.00.pth", weights_only=True, mmap=True)
    mapper = MetaKeyMapper("llama3")
    expected = dict(mapper.to_meta(k, v) for k, v in state.items())
    assert list(written) == list(expected)
    assert all(torch.equal(written[k], expected[k]) for k in expected)


LOAD = """
import json, torch
from tests.modeling.test_outputs_memory import PeakRSS
from modeling.checkpointing import FullModelMetaCheckpointer
ckpt = FullModelMetaCheckpointer({directory!r})
ckpt.keys()  # maps the files: their pages are read as tensors need them
with PeakRSS() as peak:
    state = ckpt.load_checkpoint()
assert sum(t.numel() for t in state.values()) * 4 == {model_bytes}
print(json.dumps({{"extra": peak.extra}}))
"""


def test_a_multi_file_meta_load_holds_at_most_one_file_besides_the_model(tmp_path):
    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux /proc for exact peak RSS")
    torch.manual_seed(0)
    sizes = dict(vocab_size=4096, num_layers=6, num_heads=8, num_kv_heads=2, embed_dim=512)
    model = llama3(**sizes, intermediate_dim=1536, max_seq_len=64)
    state = {k: v.detach() for k, v in model.state_dict().items()}
    single = tmp_path / "one"
    single.mkdir()
    mapper = MetaKeyMapper("llama3")
    torch.save(dict(mapper.to_meta(k, v) for k, v in state.items()), single / "consolidated.00.pth")
    params = {"dim": 512, "n_layers": 6, "n_heads": 8, "n_kv_heads": 2, "vocab_size": 4096}
    (single / "params.json").write_text(json.dumps(params))
    (single / "tokenizer.model").write_bytes(b"tok")
    directory = split_like_meta("llama3", single, tmp_path / "mp4", 4)
    model_bytes = sum(t.numel() * 4 for t in state.values())
    file_bytes = max(p.stat().st_size for p in directory.glob("consolidated.*.pth"))
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(256 * 1024)}  # freed memory leaves RSS
    out = subprocess.run(
        [sys.executable, "-c", LOAD.format(directory=str(directory), model_bytes=model_bytes)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    extra = json.loads(out.stdout.strip().splitlines()[-1])["extra"]

    assert model_bytes > 80 * MB and file_bytes < model_bytes / 3
    # the loaded model plus at most one file's mapped pages; both copies would be 2x
    assert extra <= model_bytes + file_bytes + 8 * MB, (extra / MB, model_bytes / MB)
