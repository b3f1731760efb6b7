"""The small Llama 3 both training benchmarks use, on our side and on transformers' side."""

import argparse

import torch


def add_size_args(parser: argparse.ArgumentParser) -> None:
    """The model and batch size flags shared by the benchmarks."""
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--kv-heads", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=16_384)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4)


def sizes(args: argparse.Namespace) -> dict:
    """Our ``llama3(...)`` keywords for the flags."""
    return dict(
        vocab_size=args.vocab,
        num_layers=args.layers,
        num_heads=args.heads,
        num_kv_heads=args.kv_heads,
        embed_dim=args.dim,
        intermediate_dim=args.dim * 8 // 3 // 64 * 64,
        max_seq_len=args.seq,
    )


def hf_model(args: argparse.Namespace):
    """The ``LlamaForCausalLM`` of transformers at the same sizes (float32, SDPA, seeded)."""
    import transformers

    s = sizes(args)
    config = transformers.LlamaConfig(
        vocab_size=s["vocab_size"],
        hidden_size=s["embed_dim"],
        intermediate_size=s["intermediate_dim"],
        num_hidden_layers=s["num_layers"],
        num_attention_heads=s["num_heads"],
        num_key_value_heads=s["num_kv_heads"],
        max_position_embeddings=s["max_seq_len"],
        rope_theta=500_000.0,
        rms_norm_eps=1e-5,
        attn_implementation="sdpa",
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).float()


def our_state_dict(hf) -> dict[str, torch.Tensor]:
    """``hf``'s weights under our names, through the production key map."""
    from modeling.convert import HeadDims, KeyMapper

    mapper = KeyMapper("llama3", HeadDims.from_hf_config(hf.config.to_dict()))
    return mapper.convert_from_hf(hf.state_dict().items())
