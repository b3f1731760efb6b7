"""Bytes our decoder saves for backward, derived op by op from ``modeling.modules``.

The counts follow what autograd keeps for each op of one training step, deduplicated by
storage (views share it), and were checked against measured CPU steps
(``tests/orchestrator/test_planner.py``). ``T`` is tokens per rank (batch x sequence), ``p``
the compute dtype's bytes (2 for bf16 on GPU, 4 for float32 on CPU). Per decoder layer:

- RMSNorm: its input in float32 (``x.float()``) plus the per-token rstd; the output cast
  to the compute dtype when a following projection trains (needs its input). On CPU the
  op is composite, and a trainable norm weight also keeps ``x * rstd`` (float32).
- Attention (a fused kernel, no ``s^2`` tensor): rotated q and k, v, the output and the
  float32 log-sum-exp per head and token. RoPE's multiply by cos/sin keeps only the
  tables, so the pre-rotation q/k are not kept. That holds for SDPA's flash kernel
  (unpacked, ``is_causal``; CPU flash with a mask too) and for packed batches on CUDA,
  which go through compiled ``flex_attention`` with a block-causal BlockMask
  (``modeling.modules.attention_masks``) and save the same tensors.
- MLP: gate output, its activation, up output, and their product when ``w2`` trains.
- LoRA: the rank-``r`` intermediate of every adapter.
- NF4 (QLoRA): nothing. ``modeling.peft.nf4.linear_nf4`` dequantises the weight again in
  backward instead of keeping it, and the projection's input is not needed for a frozen
  weight's (absent) gradient.

The head keeps the final norm (as above) and the loss keeps the float32 log-probabilities
of every chunk (``log_softmax`` saves its output), ``4 x T x vocab`` bytes: chunking only
bounds the transient float32 copy. With activation checkpointing each layer keeps only
its input (``p x T x embed_dim``); backward recomputes one layer at a time.
"""

from dataclasses import dataclass

from orchestrator.planning.model_census import LayerCensus, ModelCensus

FP32 = 4


@dataclass(frozen=True)
class StepShape:
    """One rank's micro-batch and numerics."""

    batch_size: int
    seq_len: int
    compute_bytes: int
    kind: str  # "cuda" or "cpu"
    packed: bool = False

    @property
    def tokens(self) -> int:
        """Tokens per micro-batch on one rank."""
        return self.batch_size * self.seq_len


def norm_saved(
    shape: StepShape, dim: int, input_grad: bool, weight_trains: bool, output_kept: bool
) -> int:
    """Bytes an RMSNorm keeps: float32 input + rstd, composite extras on CPU, its output."""
    t = shape.tokens
    saved = FP32 * t * (dim + 1) if input_grad or weight_trains else 0
    if shape.kind == "cpu" and weight_trains:
        saved += FP32 * t * dim
    if output_kept:
        saved += shape.compute_bytes * t * dim
    return saved


def layer_saved(layer: LayerCensus, shape: StepShape, dim: int, input_grad: bool) -> int:
    """Bytes one decoder layer keeps for backward without activation checkpointing."""
    t, p, lin = shape.tokens, shape.compute_bytes, layer.linears
    q, k, v = lin["q_proj"], lin["k_proj"], lin["v_proj"]
    w1, w2, w3 = lin["w1"], lin["w2"], lin["w3"]
    saved = norm_saved(
        shape, dim, input_grad, layer.norms_trainable, q.trainable or k.trainable or v.trainable
    )
    attn_in_grad = input_grad or layer.norms_trainable
    attn_grad = attn_in_grad or q.trainable or k.trainable or v.trainable
    if attn_grad:
        saved += p * t * 2 * (q.out_dim + k.out_dim) + FP32 * t * layer.num_heads
    mid_grad = input_grad or attn_grad
    saved += norm_saved(shape, dim, mid_grad, layer.norms_trainable, w1.trainable or w3.trainable)
    mlp_in_grad = mid_grad or layer.norms_trainable
    if mlp_in_grad or w1.trainable or w3.trainable:
        saved += 3 * p * t * w1.out_dim
        saved += p * t * w2.in_dim if w2.trainable else 0
    saved += sum(p * t * m.lora_rank for m in lin.values() if m.trainable)
    return saved


def head_saved(model: ModelCensus, shape: StepShape) -> int:
    """Final norm, output projection and loss: what they keep for backward."""
    t, p, out = shape.tokens, shape.compute_bytes, model.output
    saved = norm_saved(shape, model.embed_dim, True, model.embeddings_trainable, out.trainable)
    saved += p * t * out.lora_rank if out.trainable else 0
    return saved + FP32 * t * model.vocab_size


def mask_bytes(shape: StepShape) -> int:
    """The packed batch's block-causal mask, built once per batch and shared by every layer.

    On CUDA a flex_attention BlockMask: int32 block counts and indices, partial and full,
    by rows and by columns: ``4 x b x (n^2 + n)`` int32s for ``n = ceil(s / 128)`` blocks
    (the dense mask it is built from is freed before the forward). On the CPU the float32
    additive ``[b, s, s]`` mask SDPA takes; SDPA saves that one tensor, by reference, in
    every layer.
    """
    if not shape.packed:
        return 0
    if shape.kind == "cuda":
        blocks = -(-shape.seq_len // 128)
        return 4 * 4 * shape.batch_size * (blocks**2 + blocks)
    return FP32 * shape.batch_size * shape.seq_len**2


def saved_activations(model: ModelCensus, shape: StepShape, checkpointing: bool) -> int:
    """Bytes kept from the end of forward to backward, on one rank."""
    fixed = head_saved(model, shape) + mask_bytes(shape)
    if checkpointing:
        return fixed + len(model.layers) * shape.compute_bytes * shape.tokens * model.embed_dim
    first_grad = model.embeddings_trainable
    return fixed + sum(
        layer_saved(layer, shape, model.embed_dim, first_grad or i > 0)
        for i, layer in enumerate(model.layers)
    )


def recompute_bytes(model: ModelCensus, shape: StepShape) -> int:
    """Activation checkpointing's extra in backward: one layer's activations, recomputed."""
    return max(layer_saved(layer, shape, model.embed_dim, True) for layer in model.layers)


def logits_bytes(model: ModelCensus, shape: StepShape, num_output_chunks: int) -> int:
    """Logits (or their gradient) in the compute dtype, plus one float32 chunk if upcast."""
    full = shape.compute_bytes * shape.tokens * model.vocab_size
    upcast = FP32 * -(-shape.tokens // num_output_chunks) * model.vocab_size
    return full + (upcast if shape.compute_bytes != FP32 else 0)


def dequant_bytes(model: ModelCensus, shape: StepShape) -> int:
    """The largest NF4 projection while it is used: gathered NF4 bytes plus dense weight.

    The weight dequantises straight to the compute dtype; its gathered packed bytes and
    absmax (9/16 byte per parameter) live until the dequantisation is done.
    """
    sizes = [m.numel for layer in model.layers for m in layer.linears.values() if m.nf4]
    biggest = max(sizes, default=0)
    return shape.compute_bytes * biggest + 9 * biggest // 16
