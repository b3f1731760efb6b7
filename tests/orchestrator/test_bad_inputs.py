"""Every class of bad input a user can give, through the ``tune`` CLI, checked four ways.

Each case is a command line, run in a fresh directory of stock paths (a file, an empty
folder, a folder of the user's own files, malformed YAML and JSON) next to the session's
demo checkpoint and a small saved base with its LoRA adapter. Every case must:

1. exit non-zero (1 for a user's mistake; 2 where Typer rejects an option's value);
2. print one message on stderr naming the file, key or value at fault and the fix;
3. print no traceback;
4. leave the disk as it was: every file before it unchanged, nothing written, nothing
   that looks complete (no ``.tunefleet-complete``, ``merged/`` or ``adapter/``).

Cases are in-process CLI calls that fail before any Ray worker starts, so the table runs
in seconds; two run through the session Ray cluster, for errors only a worker can meet.
Classes already tested with all four checks elsewhere are listed in ``COVERED_ELSEWHERE``.
"""

import hashlib
import importlib
import pickle
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modeling.checkpointing.atomic import COMPLETE_MARKER
from orchestrator.cli import app
from orchestrator.config import builtin_config_path
from tests.orchestrator.recipe_fixtures import TINY_MODEL

# Module path -> tests there that check message, exit code, traceback and disk already.
COVERED_ELSEWHERE = {
    "tests.modeling.test_output_rule": (  # issue 12, cases 1-3: tune merge over its inputs
        "test_merge_into_its_own_base_or_adapter_is_refused_and_leaves_them",
        "test_merge_over_user_files_is_refused_unless_forced",
        "test_merge_over_a_file_is_refused_and_the_file_kept",
        "test_run_whose_outputs_would_land_in_its_base_is_refused",
    ),
    "tests.orchestrator.test_preflight": (  # cases 4, 5, 7, 8 and 11
        "test_a_model_smaller_than_its_checkpoint_is_refused",
        "test_truncation_that_leaves_no_label_stops_the_run",
        "test_merge_of_an_adapter_for_another_size_names_the_tensor",
        "test_a_closed_address_fails_in_seconds",
    ),
    "tests.orchestrator.test_config_cli": (  # tune cp over a file, into a missing folder
        "test_cp_refuses_to_overwrite_without_force",
        "test_cp_missing_destination_directory",
        "test_cp_unknown_builtin_suggests_closest",
    ),
    "tests.orchestrator.test_download": (  # tune download: Hub errors and the output rule
        "test_revision",
        "test_gated_without_or_with_wrong_token",
        "test_missing_repo",
        "test_unreachable_endpoint_fails_fast",
        "test_output_dir_is_a_file",
        "test_a_folder_of_other_files_is_refused_before_any_transfer",
        "test_another_repos_download_is_refused_naming_both",
        "test_a_failed_refresh_leaves_the_earlier_download_whole",
        "test_failure_mid_download_leaves_no_output_and_resumes",
        "test_a_bucket_prefix_of_other_objects_is_refused",
    ),
}

# The small saved base (tests/modeling/hf_reference.py's llama3 size) as model overrides.
SMALL_MODEL = [
    "epochs=1",
    "model._component_=modeling.llama3.lora_llama3",
    "model.vocab_size=256",
    "model.num_layers=3",
    "model.num_heads=4",
    "model.num_kv_heads=2",
    "model.embed_dim=64",
    "model.intermediate_dim=128",
    "model.max_seq_len=128",
    "model.rope_base=500000.0",
    "model.norm_eps=1e-5",
    "tokenizer.max_seq_len=128",
]


@dataclass
class Case:
    """A command line and what its message must name; ``{tmp}``-style fields are filled in.

    Attributes:
        id: The test id.
        argv: The ``tune`` arguments.
        needles: Fragments the message must hold (the culprit and the fix).
        setup: Called with the workspace before the command, to make what it needs.
        exit_code: The expected status.
    """

    id: str
    argv: list[str]
    needles: list[str]
    setup: Callable[[dict], None] | None = None
    exit_code: int = 1


def run(*extra: str, recipe: str = "lora_finetune") -> list[str]:
    """``tune run`` of the demo on the session's assets, named as inputs, into the workspace.

    ``demo_assets=null``: nothing is generated, so each input is checked as a user's is.
    """
    return [
        "run",
        recipe,
        "--config",
        "demo",
        "demo_assets=null",
        "checkpointer.checkpoint_dir={assets}/model",
        "tokenizer.path={assets}/tokenizer.model",
        "output_dir={tmp}/out",
        *TINY_MODEL,
        *extra,
    ]


def merge(base: str, adapter: str, output: str) -> list[str]:
    return ["merge", "--base", base, "--adapter", adapter, "--output", output]


def pickled_base(ws: dict) -> None:
    """A base whose weights file is a pickle that only full unpickling would load."""
    base = Path(ws["tmp"]) / "pickled"
    base.mkdir()
    shutil.copy(Path(ws["assets"]) / "model" / "config.json", base / "config.json")
    (base / "pytorch_model.bin").write_bytes(pickle.dumps({"weight": object()}))


def user_folder_as_merged(ws: dict) -> None:
    (Path(ws["tmp"]) / "out" / "merged").mkdir(parents=True)
    (Path(ws["tmp"]) / "out" / "merged" / "notes.md").write_text("mine")


def tokenizer_inside_merged(ws: dict) -> None:
    merged = Path(ws["tmp"]) / "out" / "merged"
    merged.mkdir(parents=True)
    shutil.copy(Path(ws["assets"]) / "tokenizer.model", merged / "tokenizer.model")


def directory_where_cp_writes(ws: dict) -> None:
    (Path(ws["tmp"]) / "configs" / "demo.yaml").mkdir(parents=True)


CASES = [
    # --- configs and overrides -------------------------------------------------------
    Case("config-missing", ["validate", "{tmp}/nope.yaml"], ["{tmp}/nope.yaml", "not found"]),
    Case("config-malformed", ["validate", "{tmp}/bad.yaml"], ["{tmp}/bad.yaml", "line 2"]),
    Case("config-is-a-folder", ["cat", "{tmp}/empty"], ["is a directory", "YAML file inside"]),
    Case(
        "config-unknown-builtin",
        ["run", "lora_finetune", "--config", "llama3/8B_lroa"],
        ["'llama3/8B_lroa'", "Did you mean 'llama3/8B_lora'?", "tune ls"],
    ),
    Case(
        "override-unknown-key",
        run("batch_sze=4"),
        ["'batch_sze'", "Did you mean 'batch_size'?", "+batch_sze=4"],
    ),
    Case("override-without-equals", run("batch_size"), ["'batch_size' has no '='", "key=value"]),
    Case("override-bad-value", run("batch_size=abc"), ["batch_size", "integer >= 1", "'abc'"]),
    Case("override-bad-choice", run("dtype=fp8"), ["dtype", "'fp8'", "bf16, fp32"]),
    Case(
        "recipe-unknown",
        run(recipe="lora_finetun"),
        ["'lora_finetun'", "Did you mean 'lora_finetune'?"],
    ),
    Case(
        "recipe-does-not-fit-model",
        run(recipe="full_finetune"),
        ["'full_finetune' does not fit model", "run 'lora_finetune'"],
    ),
    Case(
        "optimizer-bad-setting",
        run("optimizer.lr=-1"),
        ["'torch.optim.AdamW'", "Invalid learning rate: -1", "optimizer.lr="],
    ),
    Case(  # config-only settings are checked before a remote cluster is contacted
        "optimizer-bad-setting-remote",
        run("optimizer.lr=-1", "--address", "127.0.0.1:9"),
        ["'torch.optim.AdamW'", "Invalid learning rate: -1", "optimizer.lr="],
    ),
    Case(
        "sharding-unknown-remote",
        run("sharding=zero3", "--address", "127.0.0.1:9"),
        ["sharding must be one of fsdp, hsdp", "'zero3'"],
    ),
    # --- inputs of a run -------------------------------------------------------------
    Case(
        "checkpoint-missing",
        run("checkpointer.checkpoint_dir={tmp}/nope"),
        ["'{tmp}/nope' does not exist", "tune download", "checkpoint_dir"],
    ),
    Case(
        "checkpoint-is-a-file",
        run("checkpointer.checkpoint_dir={tmp}/file.txt"),
        ["'{tmp}/file.txt' is a file", "config.json"],
    ),
    Case(
        "checkpoint-empty",
        run("checkpointer.checkpoint_dir={tmp}/empty"),
        ["config.json is missing from '{tmp}/empty'"],
    ),
    Case(
        "checkpoint-unsupported-uri",
        run("checkpointer.checkpoint_dir=http://example.com/model"),
        ["Unsupported URI 'http://example.com/model'", "s3://"],
    ),
    Case(
        "tokenizer-missing",
        run("tokenizer.path={tmp}/nope.model"),
        ["'{tmp}/nope.model' does not exist", "tokenizer.model"],
    ),
    Case(
        "tokenizer-not-bpe",
        run("tokenizer.path={tmp}/file.txt"),
        ["'{tmp}/file.txt' is not a tiktoken BPE rank file", "original/tokenizer.model"],
    ),
    Case(
        "tokenizer-is-a-folder",
        run("tokenizer.path={tmp}/empty"),
        ["'{tmp}/empty' is a directory", "tokenizer.model"],
    ),
    Case(
        "tokenizer-larger-than-model",  # issue 12, case 6, on a base of 256 rows
        [*run("checkpointer.checkpoint_dir={base}"), *SMALL_MODEL],
        ["768 tokens", "only 256", "tokenizer.path", "model.vocab_size"],
    ),
    Case("data-missing", run("dataset.source={tmp}/nope.json"), ["{tmp}/nope.json", "not found"]),
    Case(
        "data-malformed",
        run("dataset.source={tmp}/broken.json"),
        ["{tmp}/broken.json, line 1: malformed JSON"],
    ),
    Case(
        "data-folder-without-data",
        run("dataset.source={tmp}/empty"),
        ["No dataset files in {tmp}/empty", ".jsonl"],
    ),
    # --- outputs of a run (the output rule) ------------------------------------------
    Case(
        "run-merged-over-user-files",
        run(),
        ["{tmp}/out/merged", "notes.md", "move what is there away"],
        setup=user_folder_as_merged,
    ),
    Case(
        "run-merged-holding-its-tokenizer",
        run("tokenizer.path={tmp}/out/merged/tokenizer.model"),
        ["{tmp}/out/merged is a folder holding the input", "would destroy it"],
        setup=tokenizer_inside_merged,
    ),
    Case(
        "run-output-dir-is-a-file",
        run("output_dir={tmp}/file.txt", "--address", "127.0.0.1:{closed_port}"),
        ["Output directory '{tmp}/file.txt' is not writable", "output_dir="],
    ),
    # --- tune merge ------------------------------------------------------------------
    Case(
        "merge-adapter-missing",
        merge("{base}", "{tmp}/nope", "{tmp}/m"),
        ["'{tmp}/nope' does not exist"],
    ),
    Case(
        "merge-adapter-is-not-one",
        merge("{base}", "{tmp}/empty", "{tmp}/m"),
        ["adapter_config.json is missing from '{tmp}/empty'"],
    ),
    Case(
        "merge-base-missing",
        merge("{tmp}/nope", "{adapter}", "{tmp}/m"),
        ["'{tmp}/nope' does not exist"],
    ),
    Case(
        "merge-pickled-base",  # issue 12, case 10: the file named, on one line
        merge("{tmp}/pickled", "{adapter}", "{tmp}/m"),
        ["{tmp}/pickled/pytorch_model.bin", "weights-only"],
        setup=pickled_base,
    ),
    Case(
        "merge-output-under-a-file",
        merge("{base}", "{adapter}", "{tmp}/file.txt/m"),
        ["'{tmp}/file.txt/m' is not writable", "output_dir"],
    ),
    # --- tune cp ---------------------------------------------------------------------
    Case(
        "cp-onto-its-source",
        ["cp", "demo", str(builtin_config_path("demo")), "--force"],
        ["is the built-in config 'demo' itself", "another path"],
    ),
    Case(
        "cp-onto-a-folder",
        ["cp", "demo", "{tmp}/configs", "--force"],
        ["{tmp}/configs/demo.yaml is a directory", "name a file"],
        setup=directory_where_cp_writes,
    ),
    Case(
        "cp-under-a-file",
        ["cp", "demo", "{tmp}/file.txt/demo.yaml", "--make-parents"],
        ["{tmp}/file.txt is a file", "{tmp}/file.txt/demo.yaml"],
    ),
    # --- tune generate, plan, cluster, jobs ------------------------------------------
    Case(
        "generate-before-any-run",
        ["generate", "--config", "demo", "output_dir={tmp}/never", "--prompt", "hi"],
        ["No model at '{tmp}/never/merged'", "tune run", "--checkpoint-dir"],
    ),
    Case(
        "plan-unknown-gpu",
        ["plan", "--config", "demo", "--gpu", "h900"],
        ["'h900'", "Did you mean 'h200'?"],
    ),
    Case("plan-no-nodes", ["plan", "--config", "demo", "--nodes", "0"], ["--nodes", "at least 1"]),
    Case(
        "plan-no-tokens",
        ["plan", "--config", "demo", "--seq-len", "0"],
        ["--seq-len", "greater than or equal to 1"],
        exit_code=2,
    ),
    Case(
        "cluster-unknown-spec",
        ["cluster", "up", "nope", "--dry-run"],
        ["no cluster spec 'nope'", "aws, gcp"],
    ),
    Case(
        "cluster-malformed-spec",
        ["cluster", "up", "{tmp}/bad.yaml", "--dry-run"],
        ["'{tmp}/bad.yaml' is not valid YAML"],
    ),
    Case(
        "jobs-unreachable-dashboard",
        ["jobs", "status", "raysubmit_x", "--address", "http://127.0.0.1:{closed_port}"],
        ["cannot reach the Ray dashboard at 'http://127.0.0.1:{closed_port}'", "8265"],
    ),
]


@pytest.fixture(scope="module")
def lora_inputs(tmp_path_factory):
    """A small saved base and a trained LoRA adapter for it (made once)."""
    from modeling.peft import get_adapter_params
    from tests.modeling.test_checkpointing_peft import LORA, trained_lora

    root = tmp_path_factory.mktemp("lora-inputs")
    model, ckpt, base = trained_lora(root)
    adapter = ckpt.save_checkpoint(
        None, adapter_weights=get_adapter_params(model), adapter_config=LORA
    )["adapter"]
    return base, adapter


@pytest.fixture
def workspace(tmp_path, demo_assets_dir, lora_inputs):
    """Stock paths to point commands at, and the values the cases' ``{fields}`` take."""
    (tmp_path / "file.txt").write_text("keep me\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.md").write_text("my notes\n")
    (tmp_path / "bad.yaml").write_text("a: [1, 2\n")
    (tmp_path / "broken.json").write_text("{\n")
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base, adapter = lora_inputs
    return {
        "tmp": str(tmp_path),
        "assets": str(demo_assets_dir),
        "base": str(base),
        "adapter": str(adapter),
        "closed_port": str(port),
    }


def snapshot(*roots: Path) -> dict[Path, str]:
    """Every file under ``roots`` and its digest; every folder (digest ``dir``)."""
    found = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_dir():
                found[path] = "dir"
            elif path.is_file():
                found[path] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def assert_clean_failure(result, exit_code: int, needles: list[str]) -> None:
    """Checks 1-3: the exit status, the message (one ``Error:`` line), and no traceback."""
    assert result.exit_code == exit_code, result.output
    if exit_code == 1:
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1, result.stderr
        for needle in needles:
            assert needle in errors[0], errors[0]
    for needle in needles:  # a usage error from Typer: somewhere in its box
        assert needle in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception


def assert_left_as_it_was(before: dict, after: dict, *, ray_storage: bool = False) -> None:
    """Check 4: no file changed or added, and nothing that looks like a finished output.

    Args:
        before: :func:`snapshot` before the command.
        after: The same after it.
        ray_storage: Allow the empty output folder and Ray's storage folder a launch makes.
    """
    changed = {p for p in before.keys() & after.keys() if before[p] != after[p]}
    assert not changed, changed
    assert before.keys() <= after.keys(), before.keys() - after.keys()
    added = sorted(after.keys() - before.keys())
    if not ray_storage:
        assert not added, added
    for path in added:
        assert path.name != COMPLETE_MARKER and path.name not in ("merged", "adapter"), added
        assert after[path] == "dir" or "ray" in path.parts, added


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_cleanly(case, workspace, demo_assets_dir, lora_inputs, tmp_path):
    if case.setup is not None:
        case.setup(workspace)
    roots = (tmp_path, demo_assets_dir, lora_inputs[0].parent, builtin_config_path("demo").parent)
    before = snapshot(*roots)
    argv = [arg.format(**workspace) for arg in case.argv]
    result = CliRunner().invoke(app, argv)
    assert_clean_failure(result, case.exit_code, [n.format(**workspace) for n in case.needles])
    assert_left_as_it_was(before, snapshot(*roots))


RAY_CASES = [
    Case(  # issue 12, case 9: the message names num_workers itself
        "no-workers",
        run("num_workers=0"),
        ["num_workers must be at least 1, got 0", "num_workers=N", "--num-workers"],
    ),
    Case(  # issue 12, case 10: a worker meets the pickle; the file reaches the user
        "run-pickled-checkpoint",
        run("checkpointer.checkpoint_dir={tmp}/pickled", "max_failures=0"),
        ["{tmp}/pickled/pytorch_model.bin", "weights-only"],
        setup=pickled_base,
    ),
]


@pytest.mark.parametrize("case", RAY_CASES, ids=[case.id for case in RAY_CASES])
def test_bad_input_met_past_the_driver_is_refused_cleanly(
    case, workspace, ray_cluster, demo_assets_dir, lora_inputs, tmp_path
):
    if case.setup is not None:
        case.setup(workspace)
    roots = (tmp_path, demo_assets_dir, lora_inputs[0].parent)
    before = snapshot(*roots)
    result = CliRunner().invoke(app, [arg.format(**workspace) for arg in case.argv])
    assert_clean_failure(result, case.exit_code, [n.format(**workspace) for n in case.needles])
    assert_left_as_it_was(before, snapshot(*roots), ray_storage=True)


def test_the_cases_covered_elsewhere_still_exist():
    for module_name, names in COVERED_ELSEWHERE.items():
        module = importlib.import_module(module_name)
        missing = [name for name in names if not callable(getattr(module, name, None))]
        assert not missing, f"{module_name} lost {missing}; move those cases into CASES"
