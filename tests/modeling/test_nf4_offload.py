"""NF4 storage offloaded to host memory: where its buffers live and where it computes.

On a CPU-only machine host and compute device are both ``cpu``; ``meta`` stands in for
a separate compute device where only placement is checked (nothing computes on it).
"""

import torch

from modeling.llama3 import lora_llama3
from modeling.modules import RotaryPositionalEmbeddings
from modeling.peft import NF4Weight
from modeling.sharding import materialize

TINY = dict(
    vocab_size=96,
    num_layers=1,
    num_heads=4,
    num_kv_heads=2,
    embed_dim=64,
    intermediate_dim=128,
    max_seq_len=16,
    lora_attn_modules=["q_proj", "v_proj"],
    lora_rank=4,
    lora_alpha=8,
    quantize_base=True,
)
CPU = torch.device("cpu")


def _qlora_on_meta():
    with torch.device("meta"):
        return lora_llama3(**TINY)


def _nf4(model) -> list[NF4Weight]:
    return [m for m in model.modules() if isinstance(m, NF4Weight)]


def test_offloaded_weight_dequantises_the_same_and_reports_its_devices():
    torch.manual_seed(0)
    dense = torch.randn(96, 64)
    weight = NF4Weight(96, 64)
    weight.quantize_(dense)
    before = weight.dequantize()
    assert weight.compute_device is None and not weight.is_offloaded
    weight.offload_("cpu")
    assert weight.is_offloaded and weight.compute_device == CPU
    assert weight.packed.device == weight.absmax.device == CPU
    assert torch.equal(weight.dequantize(), before)
    assert torch.equal(weight.dequantize_rows(), before)
    assert "host storage, computes on cpu" in repr(weight)
    weight.quantize_(dense * 2)  # quantised on the compute device, stored on the host
    assert weight.packed.device == CPU
    torch.testing.assert_close(weight.dequantize(), 2 * before)


def test_offload_on_meta_records_the_compute_device_only():
    with torch.device("meta"):
        weight = NF4Weight(96, 64)
    weight.offload_("cpu")
    assert weight.compute_device == CPU and weight.packed.is_meta


def test_materialize_params_on_host_keeps_nf4_on_the_host_and_moves_other_buffers():
    model = _qlora_on_meta()
    materialize(model, "meta", params_on_host=True)  # "meta" stands for the GPU here
    weights = _nf4(model)
    assert len(weights) == 7
    for weight in weights:
        assert weight.is_offloaded and weight.compute_device == torch.device("meta")
        assert weight.packed.device == weight.absmax.device == CPU
    ropes = [m for m in model.modules() if isinstance(m, RotaryPositionalEmbeddings)]
    assert ropes and all(b.is_meta for m in ropes for b in m.buffers())  # on the device
    assert all(p.device == CPU for p in model.parameters())  # parameters on the host


def test_materialize_keeps_nf4_where_an_earlier_offload_put_it():
    model = _qlora_on_meta()
    for weight in _nf4(model)[:2]:
        weight.offload_("cpu")
    materialize(model, "meta")  # everything else goes to the device
    weights = _nf4(model)
    for weight in weights[:2]:
        assert weight.packed.device == CPU and weight.compute_device == CPU
    for weight in weights[2:]:
        assert weight.packed.is_meta and not weight.is_offloaded
    assert all(p.is_meta for p in model.parameters())


def test_materialize_without_offload_leaves_nf4_on_the_device():
    model = _qlora_on_meta()
    materialize(model, "cpu")
    assert all(not w.is_offloaded and w.packed.device == CPU for w in _nf4(model))
    state = {k: torch.randn(v.shape) * 0.1 for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    reference = model(torch.arange(8)[None])
    for weight in _nf4(model):
        weight.offload_("cpu")
    torch.testing.assert_close(model(torch.arange(8)[None]), reference, atol=0, rtol=0)
