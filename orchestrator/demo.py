"""A small end-to-end demonstration on the CPU: LoRA-tune a tiny Llama 3, merge, decode.

It builds a tiny Llama 3 architecture model, teaches its LoRA adapters a toy task (copy
the first half of a sequence into the second half), merges the adapters into a plain
model, checks the merged model computes what the adapted one does, and decodes with the
KV cache. Everything is real and runs in seconds; the Ray fine-tuning recipe builds on the
same pieces.
"""

import time

import torch
import torch.nn.functional as F

from modeling.llama3 import llama3, lora_llama3
from modeling.peft import get_adapter_params, get_merged_state_dict, set_trainable_params

TINY_LLAMA3 = dict(
    vocab_size=64,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    embed_dim=64,
    intermediate_dim=128,
    max_seq_len=64,
)


def copy_task_batch(generator: torch.Generator, batch: int = 16, half: int = 8):
    """Sequences ``a b`` where ``b`` repeats ``a``; loss only on the repeated half."""
    first = torch.randint(2, TINY_LLAMA3["vocab_size"], (batch, half), generator=generator)
    tokens = torch.cat([first, first], dim=1)
    labels = tokens.clone()
    labels[:, : half + 1] = -100  # the first repeat token cannot be predicted
    return tokens, labels


def run(steps: int = 150, seed: int = 0, log=print) -> dict:
    """Train, merge and decode; return what was computed."""
    torch.manual_seed(seed)
    base = llama3(**TINY_LLAMA3)
    model = lora_llama3(
        ["q_proj", "k_proj", "v_proj", "output_proj"],
        apply_lora_to_mlp=True,
        lora_rank=16,
        lora_alpha=32,
        **TINY_LLAMA3,
    )
    model.load_state_dict(base.state_dict(), strict=False)
    adapters = get_adapter_params(model)
    set_trainable_params(model, adapters)
    trainable = sum(p.numel() for p in adapters.values())
    total = sum(p.numel() for p in model.parameters())
    log(f"tiny llama3: {total:,} parameters, {trainable:,} trainable LoRA parameters")

    optimizer = torch.optim.AdamW(adapters.values(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    losses, start = [], time.perf_counter()
    for step in range(1, steps + 1):
        tokens, labels = copy_task_batch(generator)
        logits = model(tokens)[:, :-1]
        loss = F.cross_entropy(logits.flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step == 1 or step % 25 == 0:
            log(f"step {step:4d}  loss {loss.item():.4f}")
    log(f"trained {steps} steps in {time.perf_counter() - start:.1f}s")

    merged = llama3(**TINY_LLAMA3).eval()
    merged.load_state_dict(get_merged_state_dict(model), strict=True)
    model.eval()
    probe, _ = copy_task_batch(torch.Generator().manual_seed(seed + 1), batch=4)
    with torch.no_grad():
        merge_error = (merged(probe) - model(probe)).abs().max().item()
    log(f"merged model vs adapted model: max |logit difference| = {merge_error:.2e}")

    prompt = probe[:1, :9]
    merged.setup_caches(batch_size=1, max_seq_len=32)
    with torch.no_grad():
        next_token = merged(prompt)[:, -1].argmax(-1, keepdim=True)
        generated = [next_token]
        for _ in range(6):
            next_token = merged(next_token)[:, -1].argmax(-1, keepdim=True)
            generated.append(next_token)
    completion = torch.cat(generated, dim=1)[0].tolist()
    log(f"prompt     {prompt[0].tolist()}")
    log(f"completion {completion}  (expected {probe[0, 9:16].tolist()})")
    return {
        "losses": losses,
        "merge_error": merge_error,
        "completion": completion,
        "expected": probe[0, 9:16].tolist(),
    }


if __name__ == "__main__":
    run()
