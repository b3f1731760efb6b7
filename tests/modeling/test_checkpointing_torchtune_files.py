"""``checkpoint_files`` as torchtune's ``filename_format`` / ``max_filename`` mapping.

torchtune's 70B and larger configs name their shards this way (its
``FormattedCheckpointFiles``); the checkpointers expand it to the file names, as a dict or
as the omegaconf ``DictConfig`` a config holds, and name the key of a malformed one.
"""

import pytest
import torch
from omegaconf import OmegaConf

from modeling.checkpointing import (
    FullModelHFCheckpointer,
    FullModelMetaCheckpointer,
    resolve_meta_files,
)
from modeling.checkpointing.files import checkpoint_file_names
from tests.modeling.checkpoint_fixtures import saved_hf

pytest.importorskip("transformers")

# As torchtune's llama3_1/70B_lora.yaml writes it (its max_filename is quoted).
TORCHTUNE_YAML = """
checkpoint_files:
  filename_format: model-{}-of-{}.safetensors
  max_filename: "00030"
"""


def test_torchtune_yaml_expands_to_its_thirty_shards():
    node = OmegaConf.create(TORCHTUNE_YAML).checkpoint_files
    names = checkpoint_file_names(node)
    assert names == checkpoint_file_names(OmegaConf.to_container(node))
    assert len(names) == 30
    assert names[:2] == ["model-00001-of-00030.safetensors", "model-00002-of-00030.safetensors"]
    assert names[-1] == "model-00030-of-00030.safetensors"
    # The width is max_filename's, whatever its padding.
    short = {"filename_format": "file_{}_of_{}.pth", "max_filename": "12"}
    assert checkpoint_file_names(short)[::5] == [
        "file_01_of_12.pth",
        "file_06_of_12.pth",
        "file_11_of_12.pth",
    ]
    assert checkpoint_file_names(OmegaConf.create({"f": ["a.safetensors"]}).f) == ["a.safetensors"]
    assert checkpoint_file_names(None) is None


@pytest.fixture
def sharded_hf(tmp_path):
    """A tiny Llama 3 saved in several ``model-0000i-of-0000n.safetensors`` shards."""
    directory = saved_hf("llama3", tmp_path / "hf", max_shard_size="60KB")[1]
    shards = sorted(directory.glob("model-*-of-*.safetensors"))
    assert len(shards) > 2
    return directory, shards


def test_hf_checkpointer_reads_the_formatted_shards(sharded_hf):
    directory, shards = sharded_hf
    last = shards[-1].name.split("-of-")[1].removesuffix(".safetensors")  # "00004"
    formatted = OmegaConf.create(
        {"filename_format": "model-{}-of-{}.safetensors", "max_filename": last}
    )
    ckpt = FullModelHFCheckpointer(directory, checkpoint_files=formatted)
    assert ckpt.files == shards
    (directory / "model.safetensors.index.json").unlink()  # the files come from the mapping
    state = FullModelHFCheckpointer(directory, checkpoint_files=dict(formatted)).load_checkpoint()
    listed = FullModelHFCheckpointer(directory, checkpoint_files=[p.name for p in shards])
    expected = listed.load_checkpoint()
    assert set(state) == set(expected)
    assert all(torch.equal(state[key], expected[key]) for key in expected)


def test_a_shard_the_mapping_names_but_the_directory_lacks_is_named(sharded_hf):
    directory, shards = sharded_hf
    count = len(shards) + 1
    formatted = {"filename_format": "model-{}-of-{}.safetensors", "max_filename": f"{count:05d}"}
    with pytest.raises(
        FileNotFoundError,
        match=rf"\['model-00001-of-{count:05d}.safetensors', .*\] not found .*checkpoint_files",
    ):
        FullModelHFCheckpointer(directory, checkpoint_files=formatted)


def test_meta_files_take_the_mapping_too(tmp_path):
    for rank in (1, 2):
        torch.save({}, tmp_path / f"consolidated-{rank}-of-2.pth")
    files = resolve_meta_files(
        tmp_path, {"filename_format": "consolidated-{}-of-{}.pth", "max_filename": "2"}
    )
    assert [p.name for p in files] == ["consolidated-1-of-2.pth", "consolidated-2-of-2.pth"]
    (tmp_path / "params.json").write_text("{}")
    with pytest.raises(ValueError, match=r"checkpoint_files.max_filename is 2;"):
        FullModelMetaCheckpointer(
            tmp_path,
            checkpoint_files={"filename_format": "consolidated-{}-of-{}.pth", "max_filename": 2},
        )


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"filename_format": "model-{}-of-{}.safetensors"}, r"lacks \['max_filename'\]"),
        ({"max_filename": "00030"}, r"lacks \['filename_format'\]"),
        (
            {"filename_format": "m-{}-of-{}", "max_filename": "3", "max_filenames": "3"},
            r"has unknown key\(s\) \['max_filenames'\]",
        ),
        # YAML reads an unquoted 00030 as the octal number 24.
        ({"filename_format": "m-{}-of-{}", "max_filename": 24}, r"max_filename is 24;.*quote it"),
        ({"filename_format": "m-{}-of-{}", "max_filename": "30a"}, r"max_filename is '30a'"),
        ({"filename_format": "m-{}-of-{}", "max_filename": "000"}, r"max_filename is '000'"),
        ({"filename_format": "model.safetensors", "max_filename": "1"}, r"filename_format is"),
        ({"filename_format": "m-{}.safetensors", "max_filename": "1"}, r"filename_format is"),
        ({"filename_format": "m-{}-{}-{}", "max_filename": "1"}, r"filename_format is"),
        ({"filename_format": "m-{i}-of-{n}", "max_filename": "1"}, r"filename_format is"),
        ({"filename_format": "m-{}-of-{", "max_filename": "1"}, r"filename_format is"),
        ({"filename_format": ["m-{}-of-{}"], "max_filename": "1"}, r"filename_format is"),
    ],
)
def test_a_malformed_mapping_names_its_key(mapping, message, sharded_hf):
    with pytest.raises(ValueError, match=message) as err:
        FullModelHFCheckpointer(sharded_hf[0], checkpoint_files=OmegaConf.create(mapping))
    assert "checkpoint_files" in str(err.value)
