"""Qwen 2.5 under FSDP2 in two gloo processes: biases streamed by rows from a HF checkpoint.

Each rank reads only its rows of every tensor (q/k biases rotary-permuted like their
weights) from a saved transformers Qwen2 checkpoint with a tied output; the sharded model
gives transformers' logits, and its gradients reach the biases only in a full fine-tune.
"""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from modeling.checkpointing import FullModelHFCheckpointer
from modeling.peft import get_adapter_params, set_trainable_params
from modeling.qwen2_5 import lora_qwen2_5, qwen2_5
from modeling.sharding import assert_nothing_on_meta, load_owned_rows, materialize, shard_decoder

transformers = pytest.importorskip("transformers")

SIZES = dict(
    vocab_size=96,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    embed_dim=64,
    intermediate_dim=72,  # uneven across ranks
    max_seq_len=32,
    tie_word_embeddings=True,
)
TOKENS = torch.randint(0, 96, (2, 12), generator=torch.Generator().manual_seed(1))
CASES = {
    "full": None,
    "lora": dict(lora_attn_modules=["q_proj", "k_proj", "v_proj"], lora_rank=4),
    "qlora": dict(lora_attn_modules=["q_proj", "v_proj"], lora_rank=4, quantize_base=True),
}


def save_reference(directory):
    torch.manual_seed(0)
    config = transformers.Qwen2Config(
        vocab_size=96,
        hidden_size=64,
        intermediate_size=72,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32,
        rms_norm_eps=1e-6,
        rope_theta=1_000_000.0,
        tie_word_embeddings=True,
    )
    model = transformers.Qwen2ForCausalLM(config).float().eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.normal_(0.0, 0.5)
            elif param.dim() == 1:
                param.normal_(1.0, 0.1)
            else:
                param.normal_(0.0, 0.1)
    model.save_pretrained(directory)
    with torch.no_grad():
        return model(TOKENS).logits


def build(lora_kwargs):
    return lora_qwen2_5(**SIZES, **lora_kwargs) if lora_kwargs else qwen2_5(**SIZES)


def _worker(rank, port, case, directory, out_path):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        lora_kwargs = CASES[case]
        with torch.device("meta"):
            model = build(lora_kwargs)
        if lora_kwargs:
            set_trainable_params(model, get_adapter_params(model))
        shard_decoder(model)
        materialize(model, "cpu")
        ckpt = FullModelHFCheckpointer(directory, model_type="qwen2")
        load_owned_rows(model, ckpt.read_rows, ckpt.keys())
        assert_nothing_on_meta(model)
        logits = model(TOKENS)
        logits.pow(2).mean().backward()
        grads = {n for n, p in model.named_parameters() if p.grad is not None}
        if rank == 0:
            torch.save((logits.detach(), grads), out_path)
        dist.barrier()  # no rank tears gloo down while its peer still talks to it
    finally:
        dist.destroy_process_group()
    os._exit(0)  # skip C++ teardown, where gloo's threads can abort a finished rank


@pytest.mark.parametrize("case", sorted(CASES))
def test_sharded_load_from_hf_rows_gives_transformers_logits(case, tmp_path):
    expected = save_reference(tmp_path / "hf")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out_path = tmp_path / "rank0.pt"
    mp.start_processes(
        _worker,
        args=(port, case, str(tmp_path / "hf"), str(out_path)),
        nprocs=2,
        join=True,
        start_method="spawn",
    )
    logits, grads = torch.load(out_path)
    if case == "qlora":  # NF4 rounds the base: compare with the same model unsharded
        model = build(CASES[case]).eval()
        model.load_state_dict(
            FullModelHFCheckpointer(tmp_path / "hf", model_type="qwen2").load_checkpoint(),
            strict=False,
        )
        with torch.no_grad():
            expected = model(TOKENS)
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)
    biases = {n for n in grads if n.endswith("bias")}
    if case == "full":
        assert len(biases) == 3 * SIZES["num_layers"]
    else:
        assert not biases and grads == set(get_adapter_params(build(CASES[case])))
