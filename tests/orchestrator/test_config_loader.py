"""Loading configs: built-ins, files, dicts, overrides, interpolation, pkg:// paths, errors."""

from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from orchestrator.config import ConfigError, config_name, load_config
from orchestrator.config.overrides import parse_override

BASE = {
    "output_dir": "/tmp/run",
    "batch_size": 2,
    "model": {
        "_component_": "modeling.llama3.lora_llama3_8b",
        "lora_attn_modules": ["q_proj", "v_proj", "output_proj"],
        "lora_rank": 8,
    },
    "checkpointer": {
        "_component_": "modeling.checkpointing.FullModelHFCheckpointer",
        "checkpoint_dir": "/tmp/ckpt",
        "output_dir": "${output_dir}",
    },
    "optimizer": {"_component_": "torch.optim.AdamW", "lr": 3e-4},
    "settings": {"nested": {"depth": 1}},
}


def write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- sources ---------------------------------------------------------------------------


def test_builtin_name_with_and_without_suffix_loads_the_same_config():
    plain, suffixed = load_config("llama3/8B_lora"), load_config("llama3/8B_lora.yaml")
    assert isinstance(plain, DictConfig)
    assert plain.model._component_ == "modeling.llama3.lora_llama3_8b"
    assert OmegaConf.to_container(plain) == OmegaConf.to_container(suffixed)


def test_yaml_path_and_path_object_load(tmp_path):
    path = write(tmp_path, "output_dir: /x\nbatch_size: 3\n")
    assert load_config(str(path)).batch_size == 3
    assert load_config(path).output_dir == "/x"


def test_dict_is_copied_not_modified():
    cfg = load_config(BASE, ["batch_size=5"])
    assert cfg.batch_size == 5
    assert BASE["batch_size"] == 2


def test_dictconfig_input_keeps_interpolations_live():
    cfg = load_config(OmegaConf.create(BASE))
    cfg.output_dir = "/elsewhere"
    assert cfg.checkpointer.output_dir == "/elsewhere"


# --- overrides -------------------------------------------------------------------------


def test_override_scalar_nested_and_float():
    cfg = load_config(BASE, ["batch_size=16", "model.lora_rank=32", "optimizer.lr=1e-4"])
    assert cfg.batch_size == 16
    assert cfg.model.lora_rank == 32
    assert cfg.optimizer.lr == pytest.approx(1e-4)
    assert isinstance(cfg.optimizer.lr, float)


def test_override_list_replaces_the_whole_list():
    cfg = load_config(BASE, ["model.lora_attn_modules=[q_proj,v_proj]"])
    assert list(cfg.model.lora_attn_modules) == ["q_proj", "v_proj"]


def test_override_list_item_by_index():
    cfg = load_config(BASE, ["model.lora_attn_modules.0=k_proj"])
    assert list(cfg.model.lora_attn_modules) == ["k_proj", "v_proj", "output_proj"]


def test_override_component_path_and_null():
    cfg = load_config(
        BASE, ["model._component_=modeling.llama3.qlora_llama3_8b", "batch_size=null"]
    )
    assert cfg.model._component_ == "modeling.llama3.qlora_llama3_8b"
    assert cfg.batch_size is None


def test_override_mapping_replaces_the_node():
    cfg = load_config(BASE, ["optimizer={_component_: torch.optim.SGD, lr: 0.1}"])
    assert OmegaConf.to_container(cfg.optimizer) == {"_component_": "torch.optim.SGD", "lr": 0.1}


def test_delete_with_tilde():
    cfg = load_config(BASE, ["~model.lora_rank", "~settings"])
    assert "lora_rank" not in cfg.model
    assert "settings" not in cfg


def test_delete_missing_key_names_closest():
    with pytest.raises(
        ConfigError, match=r"no key 'model.lora_rnk'.*Did you mean 'model.lora_rank'"
    ):
        load_config(BASE, ["~model.lora_rnk"])


def test_unknown_top_level_key_is_an_error_with_suggestion():
    with pytest.raises(ConfigError) as err:
        load_config(BASE, ["batch_sise=4"])
    message = str(err.value)
    assert "'batch_sise'" in message
    assert "Did you mean 'batch_size'?" in message
    assert "+batch_sise=4" in message


def test_unknown_nested_key_outside_components_is_an_error():
    with pytest.raises(ConfigError, match=r"'settings.nested.dpth'.*'settings.nested.depth'"):
        load_config(BASE, ["settings.nested.dpth=2"])


def test_unknown_parent_is_an_error():
    with pytest.raises(ConfigError, match=r"no key 'setings'.*Did you mean 'settings'"):
        load_config(BASE, ["setings.nested.depth=2"])


def test_key_below_a_scalar_is_an_error():
    with pytest.raises(ConfigError, match="batch_size is a value"):
        load_config(BASE, ["+batch_size.inner=1"])


def test_new_key_under_component_becomes_an_argument():
    cfg = load_config(BASE, ["model.lora_alpha=32", "optimizer.weight_decay=0.1"])
    assert cfg.model.lora_alpha == 32
    assert cfg.optimizer.weight_decay == pytest.approx(0.1)


def test_plus_adds_new_keys_with_parents():
    cfg = load_config(BASE, ["+new_key=7", "+extra.deep.value=[1,2]"])
    assert cfg.new_key == 7
    assert list(cfg.extra.deep.value) == [1, 2]


def test_plus_on_existing_key_is_an_error_and_double_plus_sets():
    with pytest.raises(ConfigError, match="already exists"):
        load_config(BASE, ["+batch_size=4"])
    assert load_config(BASE, ["++batch_size=4", "++fresh=1"]).batch_size == 4


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("batch_size", "has no '='"),
        ("~batch_size=3", "no value"),
        ("bad key=1", "not a dotted key"),
        ("model.lora_attn_modules=[q_proj,", "not valid YAML"),
    ],
)
def test_malformed_overrides(text, match):
    with pytest.raises(ConfigError, match=match):
        load_config(BASE, [text])


def test_parse_override_actions():
    assert parse_override("a.b=1").action == "set"
    assert parse_override("+a=1").action == "add"
    assert parse_override("++a=1").action == "force"
    assert parse_override("~a").action == "delete"
    assert parse_override("x=a=b").value == "a=b"


def test_override_value_with_interpolation_stays_live():
    cfg = load_config(BASE, ["checkpointer.output_dir=${output_dir}/ckpt", "output_dir=/new"])
    assert cfg.checkpointer.output_dir == "/new/ckpt"


# --- interpolation ---------------------------------------------------------------------


def test_interpolation_resolves_from_yaml(tmp_path):
    path = write(tmp_path, "output_dir: /runs/a\ncheckpointer:\n  output_dir: ${output_dir}\n")
    cfg = load_config(path, ["output_dir=/runs/b"])
    assert cfg.checkpointer.output_dir == "/runs/b"


def test_broken_interpolation_names_key_and_closest():
    with pytest.raises(ConfigError) as err:
        load_config({"output_dir": "/x", "ckpt": {"dir": "${outptu_dir}"}})
    assert "'ckpt.dir'" in str(err.value)
    assert "Did you mean 'output_dir'?" in str(err.value)


def test_deleting_an_interpolation_target_is_caught():
    with pytest.raises(ConfigError, match="checkpointer.output_dir"):
        load_config(BASE, ["~output_dir"])


# --- pkg:// paths ----------------------------------------------------------------------


def test_pkg_paths_become_absolute_paths_inside_the_package():
    import orchestrator

    cfg = load_config(
        {
            "dataset": {"source": "pkg://orchestrator/data/x.json"},
            "l": ["pkg://orchestrator/configs/demo.yaml"],
        }
    )
    root = Path(orchestrator.__file__).parent
    assert cfg.dataset.source == str(root / "data" / "x.json")
    assert Path(cfg.l[0]).is_file()


def test_demo_config_data_path_points_into_the_package():
    import orchestrator

    source = Path(load_config("demo").dataset.source)
    assert source == Path(orchestrator.__file__).parent / "data" / "demo_instructions.json"


def test_pkg_path_to_a_missing_package_is_an_error():
    with pytest.raises(ConfigError, match=r"dataset.source.*no_such_pkg_xyz"):
        load_config({"dataset": {"source": "pkg://no_such_pkg_xyz/a.json"}})


# --- file errors -----------------------------------------------------------------------


def test_missing_yaml_file_is_named(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(str(missing))


def test_missing_file_that_looks_like_builtin_lists_closest():
    with pytest.raises(FileNotFoundError) as err:
        load_config("llama3/8B_lroa.yaml")
    assert "llama3/8B_lora" in str(err.value)


def test_unknown_builtin_name_suggests_closest():
    with pytest.raises(
        ConfigError, match=r"unknown built-in config 'mistral/7B_lroa'.*'mistral/7B_lora'"
    ):
        load_config("mistral/7B_lroa")


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = write(
        tmp_path, "output_dir: /x\nmodel:\n  lora_attn_modules: [q_proj, v_proj\n  rank: 8\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message
    assert "line 4" in message
    assert "started at line 3" in message


def test_duplicate_key_is_reported_with_line(tmp_path):
    path = write(tmp_path, "batch_size: 1\nbatch_size: 2\n")
    with pytest.raises(ConfigError, match=r"line 2.*duplicate key"):
        load_config(path)


def test_empty_and_list_documents_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="empty"):
        load_config(write(tmp_path, "", "empty.yaml"))
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write(tmp_path, "- a\n- b\n", "list.yaml"))


def test_directory_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="directory"):
        load_config(str(tmp_path))


def test_config_name():
    assert config_name("llama3/8B_lora") == "llama3_8B_lora"
    assert config_name("demo.yaml") == "demo"
    assert config_name(Path("/a/b/my_run.yaml")) == "my_run"
    assert config_name({"a": 1}) == "config"
