"""Convert tensors between Hugging Face names/layouts and ours, one tensor at a time.

Conversion works tensor by tensor so that checkpoint readers can stream: nothing here
ever needs the whole state dict. The only layout changes are the q/k rotary permutation
and splitting/fusing Phi-3's fused projections; everything else is a rename.
"""

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial

import torch

from modeling.convert.key_maps import KEY_MAPS, KeyRule

# PEFT saves adapters under the wrapped model's names; our adapter suffixes and PEFT's.
PEFT_PREFIX = "base_model.model."
ADAPTER_NAMES = {
    "lora_a.weight": "lora_A.weight",
    "lora_b.weight": "lora_B.weight",
    "magnitude": "lora_magnitude_vector",
}
PEFT_ADAPTER_NAMES = {peft: ours for ours, peft in ADAPTER_NAMES.items()}

# Buffers some exporters write that carry no weights of ours.
IGNORED_HF_KEYS = re.compile(r"model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq")


@dataclass(frozen=True)
class HeadDims:
    """The head geometry conversion needs for the rotary permutation and qkv splits."""

    num_heads: int
    num_kv_heads: int
    head_dim: int

    @classmethod
    def from_hf_config(cls, config: dict) -> "HeadDims":
        """Read ``num_attention_heads``/``num_key_value_heads``/``head_dim`` of a config.json."""
        heads = config["num_attention_heads"]
        return cls(
            num_heads=heads,
            num_kv_heads=config.get("num_key_value_heads") or heads,
            head_dim=config.get("head_dim") or config["hidden_size"] // heads,
        )


def hf_to_interleaved(weight: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Undo Hugging Face's rotate-half row order of a q/k projection (rows = heads * dim)."""
    head_dim = weight.shape[0] // num_heads
    return weight.reshape(num_heads, 2, head_dim // 2, -1).transpose(1, 2).reshape(weight.shape)


def interleaved_to_hf(weight: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Apply Hugging Face's rotate-half row order to a q/k projection in Meta's layout."""
    head_dim = weight.shape[0] // num_heads
    return weight.reshape(num_heads, head_dim // 2, 2, -1).transpose(1, 2).reshape(weight.shape)


class KeyMapper:
    """The key map of one ``model_type``, compiled for lookups in both directions.

    Args:
        model_type: ``llama3`` (also Llama 3.1 and 3.3), ``llama3_2``, ``llama2``,
            ``mistral``, ``phi3_mini``, ``gemma`` or ``qwen2`` (Qwen 2.5;
            torchtune's ``QWEN2``), case-insensitive.
        dims: Head geometry of the model being converted.
    """

    def __init__(self, model_type: str, dims: HeadDims) -> None:
        key = model_type.lower()
        if key not in KEY_MAPS:
            raise ValueError(
                f"Unknown model_type {model_type!r}; expected one of {sorted(KEY_MAPS)}"
            )
        self.model_type = key
        self.dims = dims
        self.rules = KEY_MAPS[key]
        self._hf = [(key_pattern(rule.hf), rule) for rule in self.rules]
        self._ours = [
            (key_pattern(name), rule, part)
            for rule in self.rules
            for part, name in enumerate(rule.ours)
        ]

    def hf_rule(self, hf_key: str) -> tuple[KeyRule, str | None]:
        """The rule for a Hugging Face key and its layer index (None outside layers).

        Raises:
            ValueError: Naming the key and the model_type when no rule matches.
        """
        for pattern, rule in self._hf:
            match = pattern.fullmatch(hf_key)
            if match:
                return rule, next(iter(match.groups()), None)
        raise ValueError(
            f"Unknown Hugging Face key {hf_key!r} for model_type {self.model_type!r}: "
            f"no rule in its key map matches; is model_type right?"
        )

    def our_rule(self, key: str) -> tuple[KeyRule, int, str | None]:
        """The rule holding one of our keys, which part of it, and the layer index."""
        for pattern, rule, part in self._ours:
            match = pattern.fullmatch(key)
            if match:
                return rule, part, next(iter(match.groups()), None)
        raise ValueError(f"Key {key!r} has no Hugging Face name for model_type {self.model_type!r}")

    def from_hf(self, hf_key: str, tensor: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """Our key(s) and tensor(s) for one Hugging Face tensor (empty for ignored buffers)."""
        if IGNORED_HF_KEYS.fullmatch(hf_key):
            return []
        rule, layer = self.hf_rule(hf_key)
        names = [name.format(layer) for name in rule.ours]
        if rule.fused is None:
            return [(names[0], self._unpermute(rule.rotary, tensor))]
        parts = torch.split(tensor, self.split_sizes(rule, tensor.shape[0]), dim=0)
        if rule.fused == "qkv":
            parts = (self._unpermute("q", parts[0]), self._unpermute("k", parts[1]), parts[2])
        return list(zip(names, parts, strict=True))

    def to_hf(self, state_dict: dict[str, torch.Tensor]) -> Iterator[tuple[str, torch.Tensor]]:
        """Yield Hugging Face keys and tensors for our ``state_dict`` (fusing where needed).

        A fused Hugging Face tensor is emitted once all of its parts have been seen.
        """
        pending: dict[str, dict[int, torch.Tensor]] = {}
        for key, tensor in state_dict.items():
            rule, part, layer = self.our_rule(key)
            hf_key = rule.hf.format(layer)
            if rule.fused is None:
                yield hf_key, self._permute(rule.rotary, tensor)
                continue
            if rule.fused == "qkv" and part < 2:
                tensor = self._permute("qk"[part], tensor)
            parts = pending.setdefault(hf_key, {})
            parts[part] = tensor
            if len(parts) == len(rule.ours):
                yield hf_key, torch.cat([parts[i] for i in range(len(rule.ours))], dim=0)
                del pending[hf_key]
        if pending:
            raise ValueError(
                f"Incomplete fused tensors {sorted(pending)}: some of their parts are missing"
            )

    def convert_from_hf(
        self,
        items: Iterable[tuple[str, torch.Tensor]],
    ) -> dict[str, torch.Tensor]:
        """A whole (or partial) state dict of ours from Hugging Face ``(key, tensor)`` pairs."""
        return {
            key: value for hf_key, tensor in items for key, value in self.from_hf(hf_key, tensor)
        }

    def adapter_target(self, key: str) -> tuple[KeyRule, int, str | None, str]:
        """The rule, part and layer of one of our adapter keys, and its adapter suffix.

        Raises:
            ValueError: For a key that is not an adapter key or has no Hugging Face name.
        """
        for ours in ADAPTER_NAMES:
            if key.endswith("." + ours):
                rule, part, layer = self.our_rule(key[: -len(ours) - 1] + ".weight")
                return rule, part, layer, ours
        raise ValueError(f"{key!r} is not an adapter key (expected one of {list(ADAPTER_NAMES)})")

    def adapter_to_peft(self, key: str, tensor: torch.Tensor) -> tuple[str, torch.Tensor]:
        """PEFT's name and layout for one of our adapter tensors.

        LoRA B rows and DoRA magnitudes of q/k projections get the rotary permutation
        (A acts on the input side and keeps its layout).

        Raises:
            ValueError: For adapters on a projection Hugging Face fuses (Phi-3's q/k/v,
                gate/up): those need :meth:`adapters_to_peft`, which fuses them.
        """
        rule, part, layer, ours = self.adapter_target(key)
        if rule.fused is not None:
            raise ValueError(
                f"Adapter {key!r} of model_type {self.model_type!r} is part of the fused "
                f"{rule.hf.format(layer)!r}; convert all adapters at once with adapters_to_peft"
            )
        return self._peft_key(rule, layer, ours), self._permute_adapter(rule, part, ours, tensor)

    def adapters_to_peft(
        self,
        adapters: Mapping[str, torch.Tensor],
        base_row_norms: Callable[[str], torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """PEFT's names and layouts for all of our adapter tensors, fusing where HF fuses.

        Adapters on parts of one fused Hugging Face projection (Phi-3's q/k/v or gate/up)
        become one PEFT LoRA on it (see :meth:`fused_adapter_to_peft`); the others are
        converted one by one (:meth:`adapter_to_peft`).

        Args:
            adapters: Our adapter tensors (``...lora_a.weight``, ``...lora_b.weight``,
                ``...magnitude``).
            base_row_norms: The row norms of a base Hugging Face weight by its key; only
                DoRA on some parts of a fused projection needs it.
        """
        peft: dict[str, torch.Tensor] = {}
        fused: dict[str, tuple[KeyRule, str | None, dict[int, dict[str, torch.Tensor]]]] = {}
        for key, tensor in adapters.items():
            rule, part, layer, ours = self.adapter_target(key)
            if rule.fused is None:
                peft.update([self.adapter_to_peft(key, tensor)])
            else:
                entry = fused.setdefault(rule.hf.format(layer), (rule, layer, {}))
                entry[2].setdefault(part, {})[ours] = tensor
        for hf_key, (rule, layer, parts) in fused.items():
            norms = None if base_row_norms is None else partial(base_row_norms, hf_key)
            peft.update(self.fused_adapter_to_peft(rule, layer, parts, norms))
        return peft

    def fused_adapter_to_peft(
        self,
        rule: KeyRule,
        layer: str | None,
        parts: Mapping[int, Mapping[str, torch.Tensor]],
        base_row_norms: Callable[[], torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """One PEFT LoRA on a fused projection from our adapters on some of its parts.

        For adapted parts ``S`` (each ``A_s``: ``[r, in]``, ``B_s``: ``[rows_s, r]``), the
        fused ``A`` stacks the ``A_s`` (``[|S| r, in]``) and the fused ``B`` holds each
        ``B_s`` (q/k rows rotary-permuted) in its part's rows and its own column block,
        zeros elsewhere; so ``B A`` is ``B_s A_s`` in the rows of ``s`` and zero in the
        rows of un-adapted parts. The fused rank is ``|S| r``: the adapter's config must
        give the module ``|S| alpha`` too, keeping the scale ``alpha / r``.

        DoRA's magnitude is per output row: adapted rows keep theirs, and rows of
        un-adapted parts get the base weight's row norms, which makes DoRA the identity
        there, exactly as the separate un-adapted projection.

        Args:
            rule: The fused rule (``fused`` set).
            layer: Its layer index.
            parts: Our adapter tensors by part index (0 = q / gate) and adapter suffix.
            base_row_norms: The row norms of the fused base weight (Hugging Face layout);
                needed only for DoRA on some parts.

        Raises:
            ValueError: For DoRA on some parts without ``base_row_norms``.
        """
        rows = self._fused_part_rows(rule, parts)
        starts = [sum(rows[:i]) for i in range(len(rows))]
        present = sorted(parts)
        ranks = [parts[p]["lora_a.weight"].shape[0] for p in present]
        a = torch.cat([parts[p]["lora_a.weight"] for p in present], dim=0)
        b = a.new_zeros(sum(rows), sum(ranks))
        column = 0
        for p, rank in zip(present, ranks, strict=True):
            block = self._permute_adapter(rule, p, "lora_b.weight", parts[p]["lora_b.weight"])
            b[starts[p] : starts[p] + rows[p], column : column + rank] = block
            column += rank
        tensors = {
            self._peft_key(rule, layer, "lora_a.weight"): a,
            self._peft_key(rule, layer, "lora_b.weight"): b,
        }
        if any("magnitude" in parts[p] for p in present):
            tensors[self._peft_key(rule, layer, "magnitude")] = self._fused_magnitude(
                rule, layer, parts, rows, base_row_norms
            )
        return tensors

    def _fused_magnitude(
        self,
        rule: KeyRule,
        layer: str | None,
        parts: Mapping[int, Mapping[str, torch.Tensor]],
        rows: list[int],
        base_row_norms: Callable[[], torch.Tensor] | None,
    ) -> torch.Tensor:
        """The fused DoRA magnitude: ours in adapted rows, base row norms in the others."""
        if len(parts) < len(rule.ours) and base_row_norms is None:
            adapted = [rule.ours[p].format(layer) for p in sorted(parts)]
            raise ValueError(
                f"DoRA (use_dora=True) on only {adapted} of the fused "
                f"{rule.hf.format(layer)!r} needs the base weight's row norms for its other "
                f"rows; pass base_row_norms, adapt all of its parts (lora_attn_modules / "
                f"apply_lora_to_mlp), or set use_dora=False"
            )
        norms = base_row_norms() if len(parts) < len(rule.ours) else None
        blocks = []
        start = 0
        for p, n in enumerate(rows):
            if p in parts:
                blocks.append(
                    self._permute_adapter(rule, p, "magnitude", parts[p]["magnitude"]).float()
                )
            else:
                blocks.append(norms[start : start + n].float())
            start += n
        return torch.cat(blocks).to(parts[min(parts)]["magnitude"].dtype)

    def _fused_part_rows(self, rule: KeyRule, parts: Mapping[int, Mapping]) -> list[int]:
        """Rows of each part of a fused weight, from the head geometry or a present part."""
        if rule.fused == "qkv":
            return self.split_sizes(rule, 0)
        part_rows = next(iter(parts.values()))["lora_b.weight"].shape[0]
        return self.split_sizes(rule, part_rows * len(rule.ours))

    def _peft_key(self, rule: KeyRule, layer: str | None, ours: str) -> str:
        module = rule.hf.format(layer).removesuffix(".weight")
        return f"{PEFT_PREFIX}{module}.{ADAPTER_NAMES[ours]}"

    def _permute_adapter(
        self, rule: KeyRule, part: int, ours: str, tensor: torch.Tensor
    ) -> torch.Tensor:
        """Rotate-half row order for q/k ``lora_b``/magnitude (``lora_a`` keeps its layout)."""
        heads = self.rotary_heads(rule, part)
        if heads is None or ours == "lora_a.weight":
            return tensor
        return interleaved_to_hf(tensor, heads)

    def adapter_from_peft(self, key: str, tensor: torch.Tensor) -> tuple[str, torch.Tensor]:
        """Our name and layout for one tensor of a PEFT adapter file (inverse of export)."""
        for peft in PEFT_ADAPTER_NAMES:
            if key.endswith("." + peft):
                hf_module = key.removeprefix(PEFT_PREFIX)[: -len(peft) - 1]
                ours = PEFT_ADAPTER_NAMES[peft]
                break
        else:
            raise ValueError(
                f"{key!r} is not a PEFT LoRA key (expected one of {list(PEFT_ADAPTER_NAMES)})"
            )
        rule, layer = self.hf_rule(hf_module + ".weight")
        if rule.fused is not None:
            raise ValueError(f"PEFT adapter on fused {hf_module!r} cannot be split into ours")
        heads = self.rotary_heads(rule)
        if heads is not None and ours != "lora_a.weight":
            tensor = hf_to_interleaved(tensor, heads)
        return f"{rule.ours[0].format(layer).removesuffix('.weight')}.{ours}", tensor

    def rotary_heads(self, rule: KeyRule, part: int = 0) -> int | None:
        """How many heads a (part of a) rule's rows are permuted over, or None if not rotary."""
        kind = rule.rotary or ("qk"[part] if rule.fused == "qkv" and part < 2 else None)
        if kind is None:
            return None
        return self.dims.num_heads if kind == "q" else self.dims.num_kv_heads

    def split_sizes(self, rule: KeyRule, rows: int) -> list[int]:
        """Rows of each part of a fused tensor of ``rows`` rows (qkv by heads, gate/up halves)."""
        if rule.fused == "qkv":
            d = self.dims
            return [
                d.num_heads * d.head_dim,
                d.num_kv_heads * d.head_dim,
                d.num_kv_heads * d.head_dim,
            ]
        return [rows // 2, rows - rows // 2]

    def _unpermute(self, rotary: str | None, tensor: torch.Tensor) -> torch.Tensor:
        if rotary is None:
            return tensor
        return hf_to_interleaved(tensor, self._heads(rotary))

    def _permute(self, rotary: str | None, tensor: torch.Tensor) -> torch.Tensor:
        if rotary is None:
            return tensor
        return interleaved_to_hf(tensor, self._heads(rotary))

    def _heads(self, rotary: str) -> int:
        return self.dims.num_heads if rotary == "q" else self.dims.num_kv_heads


def key_pattern(template: str) -> re.Pattern:
    """A key template (``{}`` for the layer index) compiled to match whole keys."""
    return re.compile(re.escape(template).replace(r"\{\}", r"(\d+)"))
