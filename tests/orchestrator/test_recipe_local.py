"""The fine-tuning recipe as a plain function, without Ray (LocalSession)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from orchestrator.recipes.finetune import NonFiniteLossError, finetune
from orchestrator.training.session import LocalSession
from tests.orchestrator.recipe_fixtures import demo_config


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return tmp_path_factory.mktemp("assets")


class CrashAfter(LocalSession):
    """A session whose process 'dies' right after reporting the checkpoint of ``step``."""

    def __init__(self, *args, crash_step: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.crash_step = crash_step

    def report(self, metrics, checkpoint_dir=None):
        super().report(metrics, checkpoint_dir)
        if metrics["step"] >= self.crash_step:
            raise KeyboardInterrupt("simulated worker loss")


def losses(output_dir):
    return [
        json.loads(line)["loss"] for line in (output_dir / "metrics.jsonl").read_text().splitlines()
    ]


def test_lora_run_learns_and_writes_every_output(assets, tmp_path):
    cfg = demo_config(assets, tmp_path / "out")
    session = LocalSession(checkpoint_root=tmp_path / "ckpt")
    finetune(cfg, session)
    out = tmp_path / "out"
    curve = losses(out)
    assert len(curve) == 8 and curve[-1] < curve[0] - 0.1, (out / "metrics.jsonl").read_text()
    assert {p.name for p in out.iterdir()} >= {
        "adapter",
        "merged",
        "metrics.jsonl",
        "loss_curve.png",
    }
    assert (out / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert config["r"] == 16 and set(config["target_modules"]) >= {"q_proj", "v_proj", "lm_head"}
    assert (out / "merged" / "model.safetensors.index.json").exists()
    assert session.latest_checkpoint() is not None  # the step-4 checkpoint was reported


def test_resumed_run_ends_with_the_uninterrupted_weights(assets, tmp_path):
    straight = demo_config(assets, tmp_path / "straight")
    finetune(straight, LocalSession(checkpoint_root=tmp_path / "ckpt-straight"))

    resumed = demo_config(assets, tmp_path / "resumed")
    with pytest.raises(KeyboardInterrupt):
        finetune(resumed, CrashAfter(checkpoint_root=tmp_path / "ckpt-resumed", crash_step=4))
    assert not (tmp_path / "resumed" / "adapter").exists()
    finetune(resumed, LocalSession(checkpoint_root=tmp_path / "ckpt-resumed"))

    assert losses(tmp_path / "resumed") == pytest.approx(losses(tmp_path / "straight"), abs=1e-6)
    a = load_file(tmp_path / "straight" / "adapter" / "adapter_model.safetensors")
    b = load_file(tmp_path / "resumed" / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0)


def test_gradient_accumulation_gives_the_same_updates(assets, tmp_path):
    whole = demo_config(assets, tmp_path / "whole", "batch_size=4", "max_steps_per_epoch=5")
    split = demo_config(
        assets,
        tmp_path / "split",
        "batch_size=2",
        "gradient_accumulation_steps=2",
        "max_steps_per_epoch=5",
    )
    finetune(whole, LocalSession(checkpoint_root=tmp_path / "c1"))
    finetune(split, LocalSession(checkpoint_root=tmp_path / "c2"))
    assert losses(tmp_path / "split") == pytest.approx(losses(tmp_path / "whole"), abs=1e-5)


def test_full_finetune_learns(assets, tmp_path):
    cfg = demo_config(
        assets,
        tmp_path / "full",
        "model._component_=modeling.llama3.llama3",
        "~model.lora_attn_modules",
        "~model.apply_lora_to_mlp",
        "~model.apply_lora_to_output",
        "~model.lora_rank",
        "~model.lora_alpha",
        "~model.lora_dropout",
        "optimizer.lr=1e-3",
    )
    finetune(cfg, LocalSession(checkpoint_root=tmp_path / "ckpt"))
    curve = losses(tmp_path / "full")
    assert curve[-1] < curve[0] - 0.1
    assert not (tmp_path / "full" / "adapter").exists()
    assert (tmp_path / "full" / "merged" / "config.json").exists()


def test_qlora_learns(assets, tmp_path):
    cfg = demo_config(assets, tmp_path / "qlora", "+model.quantize_base=True")
    finetune(cfg, LocalSession(checkpoint_root=tmp_path / "ckpt"))
    curve = losses(tmp_path / "qlora")
    assert curve[-1] < curve[0] - 0.1


def test_nan_loss_stops_and_names_the_step(assets, tmp_path):
    cfg = demo_config(assets, tmp_path / "nan", "optimizer.lr=1e30", "~clip_grad_norm")
    with pytest.raises(NonFiniteLossError, match=r"Loss is (nan|inf) at step [2-8]"):
        finetune(cfg, LocalSession(checkpoint_root=tmp_path / "ckpt"))
    assert not (tmp_path / "nan" / "merged").exists()


def test_meta_base_gives_the_same_adapter_and_a_meta_merged_model(assets, tmp_path):
    from modeling.checkpointing import FullModelHFCheckpointer, FullModelMetaCheckpointer
    from modeling.convert.meta import MetaKeyMapper

    hf = demo_config(assets, tmp_path / "hf")  # also makes sure the assets exist
    base = FullModelHFCheckpointer(assets / "model", model_type="llama3").load_checkpoint()
    meta_dir = tmp_path / "meta"
    meta_dir.mkdir()
    mapper = MetaKeyMapper("llama3")
    torch.save(
        dict(mapper.to_meta(k, v) for k, v in base.items()), meta_dir / "consolidated.00.pth"
    )
    (meta_dir / "params.json").write_text(
        json.dumps({"dim": 64, "n_layers": 1, "n_heads": 4, "n_kv_heads": 2})
    )
    meta = demo_config(
        assets,
        tmp_path / "meta-out",
        "checkpointer._component_=modeling.checkpointing.FullModelMetaCheckpointer",
        f"checkpointer.checkpoint_dir={meta_dir}",
    )
    finetune(hf, LocalSession(checkpoint_root=tmp_path / "c1"))
    finetune(meta, LocalSession(checkpoint_root=tmp_path / "c2"))

    from_hf = FullModelHFCheckpointer(tmp_path / "hf" / "merged", model_type="llama3")
    from_meta = FullModelMetaCheckpointer(tmp_path / "meta-out" / "merged", model_type="llama3")
    expected, actual = from_hf.load_checkpoint(), from_meta.load_checkpoint()
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], atol=1e-6, rtol=1e-5)
    a = load_file(tmp_path / "hf" / "adapter" / "adapter_model.safetensors")
    b = load_file(tmp_path / "meta-out" / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], atol=1e-6, rtol=0)


def test_outputs_go_under_output_dir_whatever_the_checkpointer_says(assets, tmp_path):
    """torchtune configs may give checkpointer.output_dir its own value; output_dir decides."""
    elsewhere = tmp_path / "elsewhere"
    cfg = demo_config(assets, tmp_path / "out", f"checkpointer.output_dir={elsewhere}")
    finetune(cfg, LocalSession(checkpoint_root=tmp_path / "ckpt"))
    assert (tmp_path / "out" / "adapter" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "out" / "merged" / "model.safetensors.index.json").is_file()
    assert not elsewhere.exists()


def test_only_logged_steps_sync_with_the_host(assets, tmp_path, monkeypatch):
    import sys

    every = demo_config(assets, tmp_path / "every")
    finetune(every, LocalSession(checkpoint_root=tmp_path / "c1"))

    item = torch.Tensor.item
    recipe_syncs = []

    def counted(self):
        if sys._getframe(1).f_code.co_filename.endswith("recipes/finetune.py"):
            recipe_syncs.append(1)
        return item(self)

    monkeypatch.setattr(torch.Tensor, "item", counted)
    sparse = demo_config(
        assets, tmp_path / "sparse", "log_every_n_steps=4", "save_every_n_steps=null"
    )
    finetune(sparse, LocalSession(checkpoint_root=tmp_path / "c2"))
    lines = (tmp_path / "sparse" / "metrics.jsonl").read_text().splitlines()
    logged = [json.loads(line) for line in lines]
    assert [m["step"] for m in logged] == [4, 8]
    assert [m["loss"] for m in logged] == pytest.approx(
        [losses(tmp_path / "every")[i] for i in (3, 7)], abs=1e-6
    )
    assert len(recipe_syncs) == 2 * 2  # per logged step: the loss and the clipped grad norm
