"""LoRA and DoRA linear layers, with an optional frozen NF4 base (QLoRA)."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from modeling.peft.nf4 import NF4Weight, linear_nf4


def merge_lora_weight(
    weight: torch.Tensor,
    lora_a: torch.Tensor,
    lora_b: torch.Tensor,
    scaling: float,
    magnitude: torch.Tensor | None = None,
) -> torch.Tensor:
    """The merged weight ``W + scaling * B A``, DoRA-rescaled per row when given a magnitude.

    The one merge formula (PEFT's ``get_delta_weight`` plus DoRA's rescale), used for
    layers, gathered state dicts and adapters merged into checkpoint files alike. It is
    computed in float32 on one new tensor, so a merge adds one weight's worth of memory,
    and returned in ``weight``'s dtype.
    """
    merged = lora_b.float() @ lora_a.float()
    merged.mul_(scaling).add_(weight)
    if magnitude is not None:
        norm = torch.linalg.vector_norm(merged, dim=1)
        merged.mul_((magnitude.float() / norm)[:, None])
    return merged.to(weight.dtype)


class LoRALinear(nn.Module):
    """``y = x W^T + (alpha / rank) * B(A(dropout(x)))`` with W frozen.

    The base weight keeps the plain ``weight`` key so a base checkpoint loads unchanged;
    adapters are ``lora_a.weight`` (``[rank, in_dim]``, Kaiming-uniform) and
    ``lora_b.weight`` (``[out_dim, rank]``, zero), so a fresh layer equals its base.

    With ``use_dora=True`` a learned ``magnitude`` per output row rescales the adapted
    weight as in DoRA (Liu et al., 2024) and PEFT's ``use_dora``:
    ``y = m / ||W + s B A||_row * (x (W + s B A)^T)``, the norm taken without gradient.

    With ``use_bias=True`` (Qwen's q/k/v) a frozen base ``bias`` is added after the adapted
    product, unscaled by DoRA, as PEFT does; merging changes only the weight.

    Args:
        in_dim: Input features.
        out_dim: Output features.
        rank: Adapter rank (positive).
        alpha: Adapter scale numerator; the update is scaled by ``alpha / rank``.
        dropout: Dropout on the adapter's input while training.
        quantize_base: Store the frozen base weight as NF4 (QLoRA).
        use_dora: Add DoRA's learned magnitude.
        use_bias: Give the base projection a (frozen, dense) bias.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        rank: int,
        alpha: float,
        dropout: float = 0.0,
        quantize_base: bool = False,
        use_dora: bool = False,
        use_bias: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(rank, int) or rank <= 0:
            raise ValueError(f"lora_rank must be a positive integer, got {rank!r}")
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.rank = rank
        self.alpha = alpha
        self.scaling = alpha / rank
        self.use_dora = use_dora
        if quantize_base:
            self.weight = NF4Weight(out_dim, in_dim)
            self.weight.quantize_(_kaiming_init(torch.empty(out_dim, in_dim)))
        else:
            self.weight = nn.Parameter(torch.empty(out_dim, in_dim), requires_grad=False)
            _kaiming_init(self.weight)
        self.bias = _frozen_bias(in_dim, out_dim) if use_bias else None
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.lora_a = nn.Linear(in_dim, rank, bias=False)
        self.lora_b = nn.Linear(rank, out_dim, bias=False)
        self.magnitude = nn.Parameter(torch.empty(out_dim)) if use_dora else None
        self.reset_lora_parameters()

    def reset_lora_parameters(self) -> None:
        """A Kaiming-uniform, B zero; DoRA magnitude from the current base weight."""
        if self.lora_a.weight.is_meta:
            return
        nn.init.kaiming_uniform_(self.lora_a.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_b.weight)
        if self.use_dora:
            self.initialize_dora_magnitude()

    def base_weight(self) -> torch.Tensor:
        """The frozen base weight as a dense tensor (dequantised if NF4)."""
        return self.weight.dequantize() if isinstance(self.weight, NF4Weight) else self.weight

    @torch.no_grad()
    def initialize_dora_magnitude(self) -> None:
        """Set the DoRA magnitude to the row norms of the current adapted weight."""
        weight = self.base_weight()
        self.magnitude.copy_(
            self._row_norm(self._adapt(weight, self.lora_a.weight, self.lora_b.weight))
        )

    def _adapt(
        self, weight: torch.Tensor, lora_a: torch.Tensor, lora_b: torch.Tensor
    ) -> torch.Tensor:
        """``W + (alpha / rank) B A`` in W's dtype."""
        return weight + (self.scaling * (lora_b @ lora_a)).to(weight.dtype)

    @staticmethod
    def _row_norm(adapted: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(adapted, dim=1).to(adapted.dtype)

    def merged_weight(self) -> torch.Tensor:
        """The dense weight a plain linear needs to compute exactly what this layer does."""
        with torch.no_grad():
            return self.merge(
                self.base_weight(), self.lora_a.weight, self.lora_b.weight, self.magnitude
            )

    def merge(
        self,
        weight: torch.Tensor,
        lora_a: torch.Tensor,
        lora_b: torch.Tensor,
        magnitude: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``W + (alpha / rank) B A``, DoRA-rescaled row by row, for given (full) tensors."""
        return merge_lora_weight(
            weight, lora_a, lora_b, self.scaling, magnitude if self.use_dora else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The adapted projection of ``x``, plus the frozen bias when there is one."""
        out = self._adapted(x)
        return out if self.bias is None else out + self.bias.to(out.dtype)

    def _adapted(self, x: torch.Tensor) -> torch.Tensor:
        """Base projection plus the scaled low-rank update (DoRA-rescaled if enabled).

        An NF4 base goes through :func:`linear_nf4`, so its dense weight lives only while
        it is used; with DoRA it is dequantised once per forward and shared by the
        projection and the row norms.
        """
        nf4 = isinstance(self.weight, NF4Weight)
        dense = None if nf4 and not self.use_dora else self.base_weight()

        def project(inp: torch.Tensor) -> torch.Tensor:
            if nf4:
                return linear_nf4(inp, self.weight, dense)
            return F.linear(inp, dense.to(inp.dtype))

        base = project(x)
        dropped = self.dropout(x)
        lora = self.lora_b(self.lora_a(dropped)) * self.scaling
        if not self.use_dora:
            return base + lora
        with torch.no_grad():
            norm = self._row_norm(self._adapt(dense, self.lora_a.weight, self.lora_b.weight))
        scale = (self.magnitude / norm).to(x.dtype)
        if isinstance(self.dropout, nn.Identity) or not self.training:
            return scale * (base + lora)
        # With dropout the adapted product sees the dropped input, as in PEFT.
        return base + (scale - 1) * project(dropped) + scale * lora

    def _load_from_state_dict(
        self,
        state_dict,
        prefix,
        local_metadata,
        strict,
        missing_keys,
        unexpected_keys,
        error_msgs,
    ):
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        if isinstance(self.weight, NF4Weight):
            self.weight.load_dense(state_dict, prefix + "weight", missing_keys, unexpected_keys)
        # A base-only checkpoint carries no magnitude: derive it from the loaded weight.
        base_only = prefix + "weight" in state_dict and prefix + "magnitude" not in state_dict
        if self.use_dora and base_only and not self.magnitude.is_meta:
            self.initialize_dora_magnitude()

    def extra_repr(self) -> str:  # noqa: D102
        return (
            f"in_dim={self.in_dim}, out_dim={self.out_dim}, rank={self.rank}, "
            f"alpha={self.alpha}, dora={self.use_dora}, bias={self.bias is not None}"
        )


class FrozenNF4Linear(nn.Module):
    """A linear whose frozen weight is stored as NF4 (QLoRA's non-adapted layers).

    Args:
        in_dim: Input features.
        out_dim: Output features.
        use_bias: Add a frozen dense bias (Qwen's q/k/v projections).
    """

    def __init__(self, in_dim: int, out_dim: int, use_bias: bool = False) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.weight = NF4Weight(out_dim, in_dim)
        self.weight.quantize_(_kaiming_init(torch.empty(out_dim, in_dim)))
        self.bias = _frozen_bias(in_dim, out_dim) if use_bias else None

    def _load_from_state_dict(
        self,
        state_dict,
        prefix,
        local_metadata,
        strict,
        missing_keys,
        unexpected_keys,
        error_msgs,
    ):
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        self.weight.load_dense(state_dict, prefix + "weight", missing_keys, unexpected_keys)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x W^T (+ b)`` with W dequantised on the fly (and again in backward)."""
        out = linear_nf4(x, self.weight)
        return out if self.bias is None else out + self.bias.to(out.dtype)


def _frozen_bias(in_dim: int, out_dim: int) -> nn.Parameter:
    """A frozen bias with ``nn.Linear``'s default initialisation (skipped on meta)."""
    bias = nn.Parameter(torch.empty(out_dim), requires_grad=False)
    if not bias.is_meta:
        bound = 1 / math.sqrt(in_dim)
        nn.init.uniform_(bias, -bound, bound)
    return bias


def _kaiming_init(weight: torch.Tensor) -> torch.Tensor:
    """``nn.Linear``'s default initialisation, skipped on the meta device."""
    if not weight.is_meta:
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    return weight
