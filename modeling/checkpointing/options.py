"""The torchtune checkpointer keywords we accept for config compatibility but do not use."""

# Resuming uses Ray Train checkpoints, so these torchtune settings have no effect here.
TORCHTUNE_KWARGS = frozenset(
    {
        "recipe_checkpoint",
        "adapter_checkpoint",
        "resume_from_checkpoint",
        "safe_serialization",
        "should_load_recipe_state",
        "enable_dcp",
        "intermediate_hf_dir_path",
    }
)


def check_torchtune_kwargs(kwargs: dict) -> None:
    """Accept torchtune's extra checkpointer keywords; name any other (likely a typo).

    Raises:
        ValueError: Naming the unknown keywords and the accepted ones.
    """
    unknown = sorted(set(kwargs) - TORCHTUNE_KWARGS)
    if unknown:
        raise ValueError(
            f"Unknown checkpointer argument(s) {unknown}; expected checkpoint_dir, "
            f"checkpoint_files, model_type, output_dir or one of {sorted(TORCHTUNE_KWARGS)}"
        )
