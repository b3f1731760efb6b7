"""torchtune component paths and what they mean here: the one alias table.

A torchtune user's YAML names ``torchtune.models.llama3.lora_llama3_8b``,
``torchtune.training.FullModelHFCheckpointer`` and so on. Each such path maps to this
project's equivalent, which keeps torchtune's names and keywords. Whole modules map by
prefix (every builder under ``torchtune.models.<family>`` is ``modeling.<family>.<name>``);
single names map exactly. A few components are accepted but replaced (bitsandbytes' paged
optimizers); those carry a note that ``tune validate`` shows. The user-facing list is
``docs/torchtune_compatibility.md``.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Alias:
    """Where a foreign component path points here.

    Attributes:
        target: Dotted path of the component used instead.
        note: Shown to the user when the replacement is not an exact equivalent.
    """

    target: str
    note: str | None = None


# Every name under the left module is the same name under the right one.
PREFIX_ALIASES: dict[str, str] = {
    "torchtune.models.": "modeling.",
    "torchtune.datasets.": "orchestrator.datasets.",
}

_CHECKPOINTERS = ("FullModelHFCheckpointer", "FullModelMetaCheckpointer")
_CHECKPOINTER_MODULES = (
    "torchtune.utils",
    "torchtune.utils.checkpointing",
    "torchtune.training",
    "torchtune.training.checkpointing",
)
_LOGGERS = (
    "DiskLogger",
    "StdoutLogger",
    "WandBLogger",
    "TensorBoardLogger",
    "CometLogger",
    "MLFlowLogger",
)
_LOGGER_MODULES = ("torchtune.training.metric_logging", "torchtune.utils.metric_logging")
_LOGGER_TARGET = "orchestrator.training.logger_backends"
# What a ``profiler`` section without ``_component_`` builds, as in torchtune's recipes.
PROFILER_COMPONENT = "orchestrator.training.profiler.setup_torch_profiler"
_TEMPLATES = "modeling.data.prompt_templates"
_DATA_TEMPLATES = (
    "PromptTemplate",
    "ChatMLTemplate",
    "GrammarErrorCorrectionTemplate",
    "SummarizeTemplate",
    "QuestionAnswerTemplate",
)
_SCHEDULER = "orchestrator.training.lr_schedulers.get_cosine_schedule_with_warmup"
_PAGED_NOTE = (
    "{name} is replaced by torch.optim.AdamW (same arguments): paged bitsandbytes "
    "optimizers do not shard with FSDP2"
)

EXACT_ALIASES: dict[str, Alias] = {
    **{
        f"{module}.{name}": Alias(f"modeling.checkpointing.{name}")
        for module in _CHECKPOINTER_MODULES
        for name in _CHECKPOINTERS
    },
    "torchtune.modules.loss.CEWithChunkedOutputLoss": Alias(
        "orchestrator.training.loss.CEWithChunkedOutputLoss"
    ),
    "torchtune.training.lr_schedulers.get_cosine_schedule_with_warmup": Alias(_SCHEDULER),
    "torchtune.modules.get_cosine_schedule_with_warmup": Alias(_SCHEDULER),
    **{
        f"{module}.{name}": Alias(f"{_LOGGER_TARGET}.{name}")
        for module in _LOGGER_MODULES
        for name in _LOGGERS
    },
    "torchtune.training.setup_torch_profiler": Alias(PROFILER_COMPONENT),
    "torchtune.utils.setup_torch_profiler": Alias(PROFILER_COMPONENT),
    **{f"torchtune.data.{name}": Alias(f"{_TEMPLATES}.{name}") for name in _DATA_TEMPLATES},
    "torchtune.models.llama2.Llama2ChatTemplate": Alias(f"{_TEMPLATES}.Llama2ChatTemplate"),
    "torchtune.models.mistral.MistralChatTemplate": Alias(f"{_TEMPLATES}.MistralChatTemplate"),
    **{
        f"bitsandbytes.optim.{name}": Alias("torch.optim.AdamW", note=_PAGED_NOTE.format(name=name))
        for name in ("PagedAdamW", "PagedAdamW8bit", "PagedAdamW32bit")
    },
}

# Paths under these prefixes never import the foreign package: no alias is an error.
FOREIGN_PREFIXES = ("torchtune.",)


def alias_for(path: str) -> Alias | None:
    """The alias of component ``path``, or None when it is used as written."""
    if path in EXACT_ALIASES:
        return EXACT_ALIASES[path]
    for prefix, replacement in PREFIX_ALIASES.items():
        if path.startswith(prefix):
            return Alias(replacement + path[len(prefix) :])
    return None


def is_foreign(path: str) -> bool:
    """Whether ``path`` names a package this project stands in for (torchtune)."""
    return path.startswith(FOREIGN_PREFIXES)


def known_foreign_paths() -> list[str]:
    """Every torchtune path with an exact alias (the prefix aliases cover whole modules)."""
    return sorted(path for path in EXACT_ALIASES if is_foreign(path))
