"""torchtune's metric loggers (``metric_logger:``) beside metrics.jsonl, and their errors."""

import importlib.util
import sys

import pytest
from omegaconf import OmegaConf

from orchestrator.config import instantiate
from orchestrator.training.logger_backends import (
    CometLogger,
    DiskLogger,
    MLFlowLogger,
    TensorBoardLogger,
    WandBLogger,
)
from orchestrator.training.metric_logger import metric_logger_for, read_metrics

STEP = {"step": 3, "loss": 1.5, "lr": 0.001, "epoch": 0, "peak_memory_gib": None, "ok": True}


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def test_disk_logger_writes_torchtunes_lines(tmp_path):
    logger = DiskLogger(log_dir=str(tmp_path / "logs"), filename="log.txt")
    logger.log_dict({"loss": 1.5, "lr": 0.001}, step=1)
    logger.log("loss", 1.25, step=2)
    logger.close()
    assert (tmp_path / "logs" / "log.txt").read_text() == (
        "Step 1 | loss:1.5 lr:0.001 \nStep 2 | loss:1.25\n"
    )


def test_stdout_logger_prints_the_disk_loggers_lines(capsys):
    logger = instantiate({"_component_": "torchtune.training.metric_logging.StdoutLogger"})
    logger.log_dict({"loss": 1.5, "lr": 0.001}, step=1)
    logger.log("loss", 1.25, step=2)
    logger.close()
    assert capsys.readouterr().out.splitlines() == [
        "Step 1 | loss:1.5 lr:0.001 ",
        "Step 2 | loss:1.25",
    ]


def test_disk_logger_default_file_is_new_per_run(tmp_path):
    logger = DiskLogger(log_dir=str(tmp_path))
    assert logger.path_to_log_file().name.startswith("log_")
    assert logger.path_to_log_file().suffix == ".txt"
    logger.close()


def test_config_metric_logger_gets_every_logged_step_beside_metrics_jsonl(tmp_path):
    cfg = OmegaConf.create(
        {
            "output_dir": str(tmp_path / "out"),
            "model": {"_component_": "modeling.llama3.llama3_tiny"},
            "metric_logger": {
                "_component_": "torchtune.training.metric_logging.DiskLogger",
                "log_dir": "${output_dir}/logs",
                "filename": "log.txt",
            },
        }
    )
    logger = metric_logger_for(cfg)
    logger.start(first_step=1)
    logger.log(STEP)
    logger.close()
    # numbers only, the step as the step: None and booleans are not metrics
    assert (tmp_path / "out" / "logs" / "log.txt").read_text() == (
        "Step 3 | loss:1.5 lr:0.001 epoch:0 \n"
    )
    assert read_metrics(tmp_path / "out" / "metrics.jsonl") == [STEP]
    saved = OmegaConf.load(tmp_path / "out" / "torchtune_config.yaml")
    assert saved.metric_logger.log_dir == str(tmp_path / "out" / "logs")  # resolved
    assert logger.backend is None  # closed


def test_no_metric_logger_means_metrics_jsonl_only(tmp_path):
    logger = metric_logger_for(OmegaConf.create({"output_dir": str(tmp_path)}))
    logger.start(first_step=1)
    logger.log(STEP)
    logger.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]


@pytest.mark.skipif(not installed("tensorboard"), reason="tensorboard is not installed")
def test_tensorboard_logger_writes_event_files_tensorboard_reads(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    node = {
        "_component_": "torchtune.training.metric_logging.TensorBoardLogger",
        "log_dir": str(tmp_path),
    }
    logger = instantiate(node)
    logger.log_dict({"loss": 2.0, "lr": 0.5}, step=1)
    logger.log_dict({"loss": 1.0, "lr": 0.25}, step=2)
    logger.close()
    (run,) = tmp_path.iterdir()
    assert run.name.startswith("run_0_")  # organize_logs: one folder per run and rank
    events = EventAccumulator(str(run))
    events.Reload()
    assert sorted(events.Tags()["tensors"] or events.Tags()["scalars"]) == ["loss", "lr"]
    if events.Tags()["tensors"]:  # new_style scalars are stored as tensors
        values = [(e.step, float(e.tensor_proto.float_val[0])) for e in events.Tensors("loss")]
    else:
        values = [(e.step, e.value) for e in events.Scalars("loss")]
    assert values == [(1, 2.0), (2, 1.0)]


@pytest.mark.skipif(installed("wandb"), reason="wandb is installed; see the offline test")
def test_wandb_logger_without_wandb_names_the_pip_package(tmp_path):
    with pytest.raises(ImportError, match=r"`pip install wandb`"):
        WandBLogger(project="p", log_dir=str(tmp_path))


@pytest.mark.skipif(not installed("wandb"), reason="wandb is not installed")
def test_wandb_logger_offline_run_records_the_steps(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    logger = WandBLogger(project="tunefleet-test", log_dir=str(tmp_path))
    logger.log_dict({"loss": 1.5}, step=1)
    logger.close()
    assert list(tmp_path.glob("wandb/offline-run-*/run-*.wandb"))


@pytest.mark.parametrize(
    ("logger", "module", "package"),
    [
        (CometLogger, "comet_ml", "comet_ml"),
        (MLFlowLogger, "mlflow", "mlflow"),
        (TensorBoardLogger, "tensorboard", "tensorboard"),
    ],
)
def test_missing_library_error_names_the_pip_package(logger, module, package, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # importing it now raises ImportError
    if module == "tensorboard":
        monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    kwargs = {"log_dir": "/tmp/unused"} if logger is TensorBoardLogger else {}
    with pytest.raises(ImportError) as err:
        logger(**kwargs)
    assert f"`pip install {package}`" in str(err.value)
    assert logger.__name__ in str(err.value)


def test_logged_config_has_its_interpolations_resolved(tmp_path):
    cfg = OmegaConf.create({"output_dir": str(tmp_path), "a": {"b": "${output_dir}/x"}})
    DiskLogger(log_dir=str(tmp_path / "logs")).log_config(cfg)
    saved = OmegaConf.to_container(OmegaConf.load(tmp_path / "torchtune_config.yaml"))
    assert saved == {"output_dir": str(tmp_path), "a": {"b": f"{tmp_path}/x"}}
