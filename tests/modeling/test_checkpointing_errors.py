"""Every bad input to the checkpointers names the file, key or value and the fix."""

import json

import pytest
import torch

import modeling.checkpointing.writers as writers
from modeling.checkpointing import FullModelHFCheckpointer, validate_config
from tests.modeling.checkpoint_fixtures import build, saved_hf, to_bin

pytest.importorskip("transformers")


@pytest.fixture
def hf_dir(tmp_path):
    return saved_hf("llama3", tmp_path / "hf", max_shard_size="60KB")[1]


def test_missing_directory_and_files_are_named(tmp_path, hf_dir):
    with pytest.raises(FileNotFoundError, match=r"'.*nowhere' does not exist"):
        FullModelHFCheckpointer(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text((hf_dir / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match=r"No Hugging Face weights.*\['config.json'\]"):
        FullModelHFCheckpointer(tmp_path / "empty")
    with pytest.raises(
        FileNotFoundError, match=r"\['model-9.safetensors'\] not found.*config.json"
    ):
        FullModelHFCheckpointer(hf_dir, checkpoint_files=["model-9.safetensors"])
    (hf_dir / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"config.json is missing.*model.safetensors.index"):
        FullModelHFCheckpointer(hf_dir)


def test_unknown_model_type_and_arguments(hf_dir):
    with pytest.raises(ValueError, match=r"Unknown model_type 'LLAMA4'.*llama3"):
        FullModelHFCheckpointer(hf_dir, model_type="LLAMA4")
    with pytest.raises(ValueError, match=r"Unknown checkpointer argument\(s\) \['model_typ'\]"):
        FullModelHFCheckpointer(hf_dir, model_typ="llama3")
    FullModelHFCheckpointer(
        hf_dir, recipe_checkpoint=None, adapter_checkpoint=None, resume_from_checkpoint=False
    )


def test_truncated_or_corrupt_files_are_named(hf_dir):
    shard = sorted(hf_dir.glob("model-*.safetensors"))[1]
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(ValueError, match=rf"Cannot read .*{shard.name}.*truncated or corrupt"):
        FullModelHFCheckpointer(hf_dir).load_checkpoint()
    shard.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ValueError, match=rf"{shard.name}"):
        FullModelHFCheckpointer(hf_dir).load_checkpoint()


def test_corrupt_bin_is_named(hf_dir):
    to_bin(hf_dir)
    shard = sorted(hf_dir.glob("pytorch_model-*.bin"))[0]
    shard.write_bytes(shard.read_bytes()[:200])
    with pytest.raises(ValueError, match=rf"{shard.name} as a weights-only torch checkpoint"):
        FullModelHFCheckpointer(hf_dir).load_checkpoint()


def test_unknown_hf_key_is_named(hf_dir):
    from safetensors.torch import save_file

    save_file(
        {"model.layers.0.self_attn.q_norm.weight": torch.ones(4)}, hf_dir / "extra.safetensors"
    )
    ckpt = FullModelHFCheckpointer(hf_dir, checkpoint_files=["extra.safetensors"])
    with pytest.raises(ValueError, match=r"'model.layers.0.self_attn.q_norm.weight'.*'llama3'"):
        ckpt.load_checkpoint()


def test_load_into_refuses_a_model_of_other_sizes_before_reading(hf_dir):
    ckpt = FullModelHFCheckpointer(hf_dir)
    ckpt.read_rows = None  # nothing may be read once the sizes disagree
    with pytest.raises(
        ValueError,
        match=r"config.json disagrees with the model builder: num_key_value_heads is 2 there "
        r"but the model has num_kv_heads=4.*checkpointer.checkpoint_dir",
    ):
        ckpt.load_into(build("llama2"))  # 4 kv heads where the checkpoint has 2


def test_load_into_loads_the_checkpoint_exactly(hf_dir):
    ckpt = FullModelHFCheckpointer(hf_dir)
    model = build("llama3")
    assert ckpt.load_into(model) == set(ckpt.keys())
    state = ckpt.load_checkpoint()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_validate_config_names_fields_and_values(hf_dir):
    config = json.loads((hf_dir / "config.json").read_text())
    validate_config(config, build("llama3"))
    with pytest.raises(
        ValueError, match=r"num_key_value_heads is 2 there but the model has num_kv_heads=4"
    ):
        validate_config(config, build("llama2"))
    with pytest.raises(ValueError, match=r"hidden_size is 96 there but the model has embed_dim=64"):
        validate_config({**config, "hidden_size": 96}, build("llama3"))


def test_unwritable_output_dir_and_bad_sizes(tmp_path, hf_dir):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    ckpt = FullModelHFCheckpointer(hf_dir, output_dir=blocker / "out")
    state = ckpt.load_checkpoint()
    with pytest.raises(ValueError, match=r"Output directory '.*file/out/merged' is not writable"):
        ckpt.save_checkpoint(state)
    with pytest.raises(ValueError, match=r"save_checkpoint needs an output_dir"):
        FullModelHFCheckpointer(hf_dir).save_checkpoint(state)
    ckpt.output_dir = tmp_path / "out"
    with pytest.raises(ValueError, match=r"max_shard_size '5 gigs' is not a size"):
        ckpt.save_checkpoint(state, max_shard_size="5 gigs")
    with pytest.raises(ValueError, match=r"adapter_weights needs adapter_config"):
        ckpt.save_checkpoint(
            None, adapter_weights={"layers.0.attn.q_proj.lora_a.weight": torch.ones(1)}
        )
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_failure_mid_write_leaves_nothing_that_looks_complete(tmp_path, hf_dir, monkeypatch):
    ckpt = FullModelHFCheckpointer(hf_dir, output_dir=tmp_path / "out")
    state = ckpt.load_checkpoint()
    real, calls = writers.save_file, []

    def failing(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 2:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(writers, "save_file", failing)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(state, max_shard_size="60KB")
    assert calls and not (tmp_path / "out" / "merged").exists()
    assert list((tmp_path / "out").iterdir()) == []  # no temporary directory left
    monkeypatch.setattr(writers, "save_file", real)
    first = ckpt.save_checkpoint(state, max_shard_size="60KB")["merged"]
    before = sorted(p.name for p in first.iterdir())
    calls.clear()
    monkeypatch.setattr(writers, "save_file", failing)
    with pytest.raises(OSError):
        ckpt.save_checkpoint(state, max_shard_size="60KB")
    assert sorted(p.name for p in first.iterdir()) == before  # the previous output is intact
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["merged"]
