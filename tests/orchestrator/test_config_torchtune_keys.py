"""torchtune keys in configs: profiler, prompt templates, tokenizer/dataset keywords, errors."""

import pytest
from omegaconf import OmegaConf

from modeling.data import Message
from modeling.data.prompt_templates import (
    ChatMLTemplate,
    Llama2ChatTemplate,
    MistralChatTemplate,
    PromptTemplate,
    SummarizeTemplate,
)
from orchestrator.config import ConfigError, instantiate, resolve_component, validate_config
from orchestrator.config.suggest import closest_path
from orchestrator.training.profiler import NullProfiler
from tests.modeling.tokenizer_fixtures import write_sentencepiece, write_tiktoken_ranks

CHAT = [
    Message("system", "You are helpful"),
    Message("user", "the quick brown fox"),
    Message("assistant", "hello world"),
]


def run_config(**sections):
    """A minimal valid run config (torchtune paths) with ``sections`` replaced or added."""
    cfg = {
        "output_dir": "/tmp/out",
        "model": {"_component_": "torchtune.models.llama3.lora_llama3_8b"},
        "tokenizer": {"_component_": "torchtune.models.llama3.llama3_tokenizer", "path": "/x"},
        "checkpointer": {
            "_component_": "torchtune.training.FullModelHFCheckpointer",
            "checkpoint_dir": "/ckpt",
            "checkpoint_files": ["model.safetensors"],
            "model_type": "LLAMA3",
            "output_dir": "${output_dir}",
        },
        "dataset": {"_component_": "torchtune.datasets.alpaca_cleaned_dataset", "packed": False},
        "optimizer": {"_component_": "torch.optim.AdamW", "lr": 1e-4},
    }
    cfg["model"]["lora_attn_modules"] = ["q_proj", "v_proj"]
    cfg.update(sections)
    return OmegaConf.create(cfg)


# --- unknown torchtune paths: one line, a suggestion only when close -------------------


@pytest.mark.parametrize(
    ("path", "suggestion"),
    [
        ("torchtune.training.setup_torch_profilr", "torchtune.training.setup_torch_profiler"),
        ("torchtune.training.DiskLogger", "torchtune.training.metric_logging.DiskLogger"),
        ("torchtune.data.SummarizeTemplat", "torchtune.data.SummarizeTemplate"),
        ("torchtune.rlhf.loss.DPOLoss", None),
        ("torchtune.training.get_lr", None),
    ],
)
def test_unknown_torchtune_path_is_one_line_with_a_close_suggestion_only(path, suggestion):
    with pytest.raises(ConfigError) as err:
        resolve_component(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path} is a torchtune path with no")
    assert message.endswith("The supported ones are listed in docs/torchtune_compatibility.md")
    if suggestion is None:
        assert "Did you mean" not in message
    else:
        assert f"Did you mean '{suggestion}'?" in message
    assert message.count("torchtune.") <= 2  # the path and the suggestion, never a list


def test_closest_path_ignores_a_shared_module_prefix():
    candidates = ["torchtune.training.FullModelMetaCheckpointer", "torchtune.training.x"]
    assert closest_path("torchtune.training.setup_torch_profiler", candidates) is None


def test_validate_names_the_key_of_an_unknown_torchtune_path():
    cfg = run_config(loss={"_component_": "torchtune.modules.loss.ForwardKLLos"})
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert str(err.value).startswith(
        "loss._component_: torchtune.modules.loss.ForwardKLLos is a torchtune path with no "
        "Tunefleet equivalent."
    )


# --- profiler ---------------------------------------------------------------------------


def test_profiler_section_validates_with_or_without_component_and_names_typos():
    section = {"enabled": True, "output_dir": "${output_dir}/prof", "wait_steps": 1}
    assert validate_config(run_config(profiler=section)) == []
    typo = {"_component_": "torchtune.training.setup_torch_profiler", "wait_step": 1}
    with pytest.raises(ConfigError) as err:
        validate_config(run_config(profiler=typo))
    assert str(err.value) == (
        "profiler.wait_step: setup_torch_profiler: unexpected argument 'wait_step'. "
        "Did you mean 'wait_steps'?"
    )


def test_disabled_profiler_is_the_null_profiler():
    node = {"_component_": "torchtune.training.setup_torch_profiler", "enabled": False}
    profiler = instantiate(node, rank=0)
    assert isinstance(profiler, NullProfiler)
    with profiler as entered:
        entered.step()


def test_profiler_schedule_values_are_checked(tmp_path):
    node = {
        "_component_": "torchtune.training.setup_torch_profiler",
        "enabled": True,
        "active_steps": 0,
        "output_dir": str(tmp_path),
    }
    with pytest.raises(ValueError, match=r"profiler.active_steps must be >= 1"):
        instantiate(node, rank=0)


# --- tokenizer keywords: prompt_template and the rest -----------------------------------


@pytest.fixture(scope="module")
def tokenizer_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokenizers")
    return {"llama3": write_tiktoken_ranks(root), "llama2": write_sentencepiece(root)}


def tokenizer(tokenizer_files, family, **keywords):
    node = {
        "_component_": f"torchtune.models.{family}.{family}_tokenizer",
        "path": str(tokenizer_files[family]),
        **keywords,
    }
    return instantiate(OmegaConf.create(node))


def test_prompt_template_path_wraps_the_messages_before_the_chat_format(tokenizer_files):
    plain = tokenizer(tokenizer_files, "llama3")
    templated = tokenizer(
        tokenizer_files, "llama3", prompt_template="torchtune.data.SummarizeTemplate"
    )
    expected = plain.tokenize_messages(
        [
            CHAT[0],
            Message("user", "Summarize this dialogue:\nthe quick brown fox\n---\nSummary:\n"),
            CHAT[2],
        ]
    )
    assert templated.tokenize_messages(CHAT) == expected
    assert templated.tokenize_messages(CHAT) != plain.tokenize_messages(CHAT)
    # the tags belong to the user turn: they take its mask (no loss)
    tokens, mask = expected
    assert mask.count(False) == plain.tokenize_messages(CHAT)[1].count(False)


def test_prompt_template_mapping_is_a_custom_template(tokenizer_files):
    custom = {"user": ["Q: ", "\nA: "], "assistant": ["", " (end)"]}
    templated = tokenizer(tokenizer_files, "llama3", prompt_template=custom)
    plain = tokenizer(tokenizer_files, "llama3")
    wrapped = [
        CHAT[0],
        Message("user", "Q: the quick brown fox\nA: "),
        Message("assistant", "hello world (end)"),
    ]
    assert templated.tokenize_messages(CHAT) == plain.tokenize_messages(wrapped)


def test_the_tokenizers_own_chat_template_is_not_applied_twice(tokenizer_files):
    plain = tokenizer(tokenizer_files, "llama2")
    native = tokenizer(
        tokenizer_files, "llama2", prompt_template="torchtune.models.llama2.Llama2ChatTemplate"
    )
    assert native.prompt_template is None
    assert native.tokenize_messages(CHAT) == plain.tokenize_messages(CHAT)
    # on another family's tokenizer the same template writes [INST] as text
    llama3 = tokenizer(
        tokenizer_files, "llama3", prompt_template="torchtune.models.llama2.Llama2ChatTemplate"
    )
    assert isinstance(llama3.prompt_template, Llama2ChatTemplate)


def test_template_classes_match_torchtunes_text():
    assert Llama2ChatTemplate()(CHAT) == [
        Message(
            "user", "[INST] <<SYS>>\nYou are helpful\n<</SYS>>\n\nthe quick brown fox [/INST] "
        ),
        CHAT[2],
    ]
    assert ChatMLTemplate()([CHAT[1], Message("assistant", "", eot=False)]) == [
        Message("user", "<|im_start|>user\nthe quick brown fox<|im_end|>\n"),
        Message("assistant", "<|im_start|>assistant\n", eot=False),
    ]
    assert SummarizeTemplate()([CHAT[2]]) == [CHAT[2]]  # only the user role has tags
    with pytest.raises(ValueError, match="MistralChatTemplate has no system role"):
        MistralChatTemplate()(CHAT)
    with pytest.raises(ValueError, match=r"role 'user' needs \[prepend, append\]"):
        PromptTemplate({"user": "Q: "})


def test_validate_checks_prompt_template_and_unsupported_tokenizer_keywords():
    good = {
        "_component_": "torchtune.models.llama2.llama2_tokenizer",
        "path": "/nowhere/tokenizer.model",
        "max_seq_len": None,
        "prompt_template": "torchtune.models.llama2.Llama2ChatTemplate",
    }
    assert validate_config(run_config(tokenizer=good)) == []  # no file is opened
    bad = {**good, "prompt_template": {"usr": ["a", "b"]}, "special_tokens_path": "/x.json"}
    with pytest.raises(ConfigError) as err:
        validate_config(run_config(tokenizer=bad))
    lines = str(err.value).splitlines()
    assert lines[0] == "2 problems:"
    assert lines[1].startswith("  tokenizer.prompt_template: Prompt template role 'usr' is not")
    assert lines[2] == (
        "  tokenizer.special_tokens_path: llama2_tokenizer: 'special_tokens_path' is not "
        "supported: Tunefleet's tokenizers take the family's published special tokens from "
        "the tokenizer file itself; remove the key"
    )


# --- dataset keywords and torchtune run keys --------------------------------------------


def test_dataset_keyword_typo_is_caught_by_validate():
    dataset = {"_component_": "torchtune.datasets.alpaca_dataset", "train_on_inputs": True}
    with pytest.raises(ConfigError) as err:
        validate_config(run_config(dataset=dataset))
    assert str(err.value) == (
        "dataset.train_on_inputs: alpaca_dataset: unexpected argument 'train_on_inputs'. "
        "Did you mean 'train_on_input'?"
    )
    dataset = {
        "_component_": "torchtune.datasets.alpaca_cleaned_dataset",
        "train_on_input": False,
        "split": "train[:100]",
        "data_files": "data.json",
        "trust_remote_code": True,
    }
    assert validate_config(run_config(dataset=dataset)) == []


def test_torchtune_run_keys_tunefleet_ignores_get_a_note_when_they_would_matter():
    cfg = run_config(optimizer_in_bwd=True, enable_activation_offloading=False)
    assert validate_config(cfg) == [
        "optimizer_in_bwd: ignored: the optimizer steps after the backward pass (gradient "
        "accumulation and clipping work as usual)"
    ]


def test_checkpointer_keyword_typo_is_caught_by_validate():
    cfg = run_config()
    cfg.checkpointer.recipe_checkpoint = None  # torchtune's: accepted
    assert validate_config(cfg) == []
    cfg.checkpointer.checkpoint_file = ["model.safetensors"]
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert str(err.value) == (
        "checkpointer.checkpoint_file: FullModelHFCheckpointer: unexpected argument "
        "'checkpoint_file'. Did you mean 'checkpoint_files'?"
    )


def test_the_compatibility_page_lists_every_aliased_torchtune_name():
    from pathlib import Path

    from orchestrator.config.aliases import EXACT_ALIASES

    page = (Path(__file__).parents[2] / "docs" / "torchtune_compatibility.md").read_text()
    names = {path.rsplit(".", 1)[-1] for path in EXACT_ALIASES}
    assert sorted(name for name in names if f"`{name}`" not in page and name not in page) == []
