"""FSDP2 sharding and streaming loads, in two real gloo processes on the CPU."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from modeling.llama3 import llama3, lora_llama3
from modeling.peft import get_adapter_params, set_trainable_params
from modeling.sharding import (
    apply_activation_checkpointing,
    assert_nothing_on_meta,
    load_owned_rows,
    materialize,
    shard_decoder,
)

SIZES = dict(
    vocab_size=96,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    embed_dim=32,
    intermediate_dim=72,
    max_seq_len=32,
)  # 72 rows: uneven across ranks is tested


def reference_state(seed=0):
    torch.manual_seed(seed)
    model = llama3(**SIZES)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.1) if p.dim() > 1 else p.normal_(1, 0.1)
    return model.state_dict()


def adapter_state(lora_kwargs):
    """Non-trivial adapter values (B != 0), the same in every process."""
    if not lora_kwargs:
        return {}
    torch.manual_seed(3)
    model = lora_llama3(**SIZES, **lora_kwargs)
    model.load_state_dict(reference_state(), strict=False)
    with torch.no_grad():
        for p in get_adapter_params(model).values():
            p.add_(torch.randn_like(p) * 0.1)
    return {k: v.detach().clone() for k, v in get_adapter_params(model).items()}


def build_sharded(lora_kwargs, checkpointing=False):
    with torch.device("meta"):
        model = lora_llama3(**SIZES, **lora_kwargs) if lora_kwargs else llama3(**SIZES)
    set_trainable_params(model, get_adapter_params(model)) if lora_kwargs else None
    if checkpointing:
        apply_activation_checkpointing(model)
    shard_decoder(model)
    materialize(model, "cpu")
    return model


def _worker(rank, port, lora_kwargs, out_path):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        state = {**reference_state(), **adapter_state(lora_kwargs)}
        model = build_sharded(lora_kwargs, checkpointing=True)
        load_state(model, state)
        assert_nothing_on_meta(model)
        tokens = torch.randint(0, 96, (2, 12), generator=torch.Generator().manual_seed(1))
        logits = model(tokens)
        logits.pow(2).mean().backward()
        grads = {n: p.grad.full_tensor() for n, p in model.named_parameters() if p.grad is not None}
        if rank == 0:
            torch.save((logits.detach(), grads), out_path)
        dist.barrier()  # no rank tears gloo down while its peer still talks to it
    finally:
        dist.destroy_process_group()
    os._exit(0)  # skip C++ teardown, where gloo's threads can abort a finished rank


def run_two_ranks(lora_kwargs, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out_path = tmp_path / "rank0.pt"
    mp.start_processes(
        _worker, args=(port, lora_kwargs, str(out_path)), nprocs=2, join=True, start_method="spawn"
    )
    return torch.load(out_path)


@pytest.mark.parametrize(
    "lora_kwargs",
    [
        None,
        dict(lora_attn_modules=["q_proj", "v_proj"], apply_lora_to_mlp=True, lora_rank=4),
        dict(lora_attn_modules=["q_proj"], lora_rank=4, use_dora=True),
        dict(lora_attn_modules=["q_proj", "k_proj"], lora_rank=4, quantize_base=True),
        dict(lora_attn_modules=["q_proj"], lora_rank=4, quantize_base=True, use_dora=True),
    ],
)
def test_sharded_streaming_load_matches_unsharded_model(lora_kwargs, tmp_path):
    logits, grads = run_two_ranks(lora_kwargs, tmp_path)
    model = lora_llama3(**SIZES, **lora_kwargs) if lora_kwargs else llama3(**SIZES)
    model.load_state_dict({**reference_state(), **adapter_state(lora_kwargs)}, strict=False)
    if lora_kwargs:
        set_trainable_params(model, get_adapter_params(model))
        assert set(grads) == set(get_adapter_params(model))  # adapters, and only they, train
    tokens = torch.randint(0, 96, (2, 12), generator=torch.Generator().manual_seed(1))
    expected = model(tokens)
    torch.testing.assert_close(logits, expected.detach(), atol=1e-5, rtol=1e-5)
    expected.pow(2).mean().backward()
    for name, grad in grads.items():
        torch.testing.assert_close(
            grad, dict(model.named_parameters())[name].grad, atol=1e-5, rtol=1e-4
        )


def load_state(model, state, strict=True):
    """Load a state dict of full tensors through the one owned-rows loop."""
    return load_owned_rows(model, lambda key, a, b: state[key][a:b], state.keys(), strict=strict)


def test_owned_rows_load_names_bad_keys_and_shapes():
    model = llama3(**SIZES)
    state = reference_state()
    with pytest.raises(ValueError, match=r"Shape mismatch for 'output.weight'.*\(96, 16\)"):
        load_state(model, {**state, "output.weight": torch.zeros(96, 16)})
    with pytest.raises(ValueError, match=r"does not have: \['bogus.weight'\]"):
        load_state(model, {**state, "bogus.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"missing from the checkpoint: \['layers.0"):
        load_state(model, {k: v for k, v in state.items() if "layers.0" not in k})


def _save_hf(state, directory):
    """Our state dict as a one-file Hugging Face checkpoint."""
    import json

    from safetensors.torch import save_file

    from modeling.convert import HeadDims, KeyMapper

    directory.mkdir(parents=True, exist_ok=True)
    mapper = KeyMapper("llama3", HeadDims(4, 2, 8))
    save_file(dict(mapper.to_hf(state)), directory / "model.safetensors")
    (directory / "config.json").write_text(
        json.dumps(
            {
                "model_type": "llama",
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "hidden_size": 32,
                "vocab_size": 96,
                "num_hidden_layers": 2,
                "intermediate_size": 72,
            }
        )
    )


def _sliced_worker(rank, port, directory, lora_kwargs, out_path):
    from modeling.checkpointing import FullModelHFCheckpointer

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        model = build_sharded(lora_kwargs)
        ckpt = FullModelHFCheckpointer(directory, model_type="llama3")
        reads = []
        read_rows = ckpt.read_rows

        def counting_read_rows(key, start, stop):
            reads.append((key, stop - start))
            return read_rows(key, start, stop)

        ckpt.read_rows = counting_read_rows
        ckpt.load_into(model)
        assert_nothing_on_meta(model)
        tokens = torch.randint(0, 96, (2, 12), generator=torch.Generator().manual_seed(1))
        logits = model(tokens).detach()
        torch.save((logits, reads), f"{out_path}.{rank}")
        dist.barrier()  # no rank tears gloo down while its peer still talks to it
    finally:
        dist.destroy_process_group()
    os._exit(0)  # skip C++ teardown, where gloo's threads can abort a finished rank


@pytest.mark.parametrize(
    "lora_kwargs",
    [
        dict(lora_attn_modules=["q_proj", "k_proj"], apply_lora_to_mlp=True, lora_rank=4),
        dict(lora_attn_modules=["q_proj"], lora_rank=4, quantize_base=True),
    ],
)
def test_sliced_load_reads_only_the_rows_each_rank_owns(lora_kwargs, tmp_path):
    state = reference_state()
    _save_hf(state, tmp_path / "ckpt")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "out"
    mp.start_processes(
        _sliced_worker,
        args=(port, tmp_path / "ckpt", lora_kwargs, str(out)),
        nprocs=2,
        join=True,
        start_method="spawn",
    )
    (logits0, reads0), (_, reads1) = torch.load(f"{out}.0"), torch.load(f"{out}.1")
    model = lora_llama3(**SIZES, **lora_kwargs)
    model.load_state_dict(state, strict=False)
    torch.testing.assert_close(
        logits0,
        model(torch.randint(0, 96, (2, 12), generator=torch.Generator().manual_seed(1))).detach(),
        atol=1e-5,
        rtol=1e-5,
    )
    full_rows = {k: v.shape[0] for k, v in state.items()}
    nf4 = bool(lora_kwargs.get("quantize_base"))
    for key, rows in reads0 + reads1:
        replicated = state[key].dim() == 1 or (nf4 and ("_proj" in key or ".w" in key))
        expected = full_rows[key] if replicated else -(-full_rows[key] // 2)
        assert rows <= expected, (key, rows, full_rows[key])
    sharded = [k for k in state if state[k].dim() == 2 and not (nf4 and "layers" in k)]
    for key in sharded:  # the two ranks' reads add up to the whole tensor, once
        assert sum(r for k, r in reads0 + reads1 if k == key) == full_rows[key], key
