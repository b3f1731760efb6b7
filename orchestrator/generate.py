"""Text generation with the KV cache, for ``tune generate`` and the demo's sample."""

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from modeling.checkpointing.atomic import require_complete
from modeling.data import Message
from modeling.modules import TransformerDecoder
from modeling.storage.paths import as_path
from orchestrator.training.outputs import LORA_KEYS, MERGED_DIR


@torch.no_grad()
def generate(
    model: TransformerDecoder,
    prompt: list[int],
    *,
    max_new_tokens: int,
    stop_tokens: list[int],
    temperature: float = 0.0,
    seed: int = 0,
) -> list[int]:
    """Decode up to ``max_new_tokens`` after ``prompt``; greedy when ``temperature`` is 0.

    The prompt runs through the model once to fill the KV cache; each new token then
    costs one single-position forward pass.
    """
    model.eval()
    budget = min(model.max_seq_len, len(prompt) + max_new_tokens)
    if len(prompt) >= budget:
        raise ValueError(
            f"The prompt has {len(prompt)} tokens; the model's max_seq_len is "
            f"{model.max_seq_len}: shorten the prompt"
        )
    model.setup_caches(batch_size=1, max_seq_len=budget)
    generator = torch.Generator().manual_seed(seed)
    try:
        logits = model(torch.tensor([prompt]))[:, -1]
        out: list[int] = []
        while len(prompt) + len(out) < budget:
            if temperature > 0:
                probs = torch.softmax(logits.float() / temperature, dim=-1)
                token = int(torch.multinomial(probs, 1, generator=generator))
            else:
                token = int(logits.argmax(-1))
            if token in stop_tokens:
                break
            out.append(token)
            logits = model(torch.tensor([[token]]))[:, -1]
        return out
    finally:
        model.remove_caches()


def base_model_config(model_cfg: DictConfig) -> dict:
    """The config of the plain model a LoRA config's merged output loads into.

    ``modeling.llama3.lora_llama3_8b`` becomes ``modeling.llama3.llama3_8b`` and the LoRA
    keywords are dropped.
    """
    node = OmegaConf.to_container(model_cfg, resolve=True)
    module, _, name = node["_component_"].rpartition(".")
    for prefix in ("qlora_", "lora_"):
        if name.startswith(prefix):
            name = name.removeprefix(prefix)
            break
    else:
        return node
    plain = {k: v for k, v in node.items() if k not in LORA_KEYS}
    plain["_component_"] = f"{module}.{name}"
    return plain


class ChatModel:
    """A model with its config's tokenizer, answering prompts framed as its training data was.

    A prompt becomes a user turn (wrapped in Alpaca's template when the config trains on
    an Alpaca-style dataset) followed by an open assistant turn, in the family's chat format.

    Args:
        model: The loaded decoder.
        tokenizer: The config's tokenizer.
        alpaca: Wrap prompts in Alpaca's template.
    """

    def __init__(self, model: TransformerDecoder, tokenizer, *, alpaca: bool) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.alpaca = alpaca

    def user_message(self, prompt: str) -> Message:
        """``prompt`` as the user turn, wrapped as the training data wrapped its prompts."""
        from orchestrator.datasets import AlpacaToMessages

        if self.alpaca:
            return AlpacaToMessages()({"instruction": prompt, "output": ""})[0]
        return Message("user", prompt)

    def prompt_tokens(self, prompt: str) -> list[int]:
        """The token ids the model continues to answer ``prompt``."""
        user = self.user_message(prompt)
        tokens, _ = self.tokenizer.tokenize_messages([user, Message("assistant", "", eot=False)])
        if tokens and tokens[-1] == self.tokenizer.eos_id:
            tokens = tokens[:-1]
        return tokens

    def answer(self, prompt: str, *, max_new_tokens: int = 48, temperature: float = 0.0) -> str:
        """The model's reply to ``prompt`` (greedy when ``temperature`` is 0)."""
        out = generate(
            self.model,
            self.prompt_tokens(prompt),
            max_new_tokens=max_new_tokens,
            stop_tokens=list(self.tokenizer.stop_tokens),
            temperature=temperature,
        )
        return self.tokenizer.decode(out)


def load_chat_model(
    cfg: DictConfig, checkpoint_dir: str | Path | None = None, *, base: bool = False
) -> ChatModel:
    """A run's merged model (or with ``base`` its base model) and tokenizer, from its config.

    Args:
        cfg: The run's config.
        checkpoint_dir: Model directory to load; default ``<output_dir>/merged``, or the
            config's base checkpoint with ``base``.
        base: Load the base model the run started from.

    Raises:
        FileNotFoundError: No model at the directory (the run has not finished), or an
            incomplete remote output.
    """
    from orchestrator.config import instantiate

    if checkpoint_dir is None and base:
        checkpoint_dir = cfg.checkpointer.checkpoint_dir
    directory = as_path(checkpoint_dir or as_path(cfg.output_dir) / MERGED_DIR)
    require_complete(directory, "the model")
    if not directory.exists():
        raise FileNotFoundError(
            f"No model at {str(directory)!r}; run `tune run ... --config` with this config "
            f"first, or pass --checkpoint-dir"
        )
    tokenizer = instantiate(cfg.tokenizer)
    tokenizer.max_seq_len = None  # a prompt is never truncated; generate() checks its length
    model = instantiate(OmegaConf.create(base_model_config(cfg.model)))
    # The merged model is in the base checkpoint's format, so the config's checkpointer reads it.
    checkpointer = instantiate(
        cfg.checkpointer, checkpoint_dir=str(directory), checkpoint_files=None
    )
    model.load_state_dict(checkpointer.load_checkpoint())
    alpaca = "alpaca" in str(cfg.dataset.get("_component_", ""))
    return ChatModel(model, tokenizer, alpaca=alpaca)
