"""LARC's `fold_into_sgd` step: SGD's update with the trust factor folded in, one compiled call
per device, dtypes and momentum options (the kernels are in larsbench.optim.kernels)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from larsbench.optim.kernels import FoldedCall, SgdHyper, dense_grads
from larsbench.optim.trust_stats import TrustStatsBuilder


@dataclass(frozen=True)
class FactorOptions:
    """What LARC's factor is computed with."""

    trust_coefficient: float
    eps: float
    clip: bool


class FoldedSgdStep:
    """The fold_into_sgd step of one LARC, with its cache of per-tensor constants."""

    def __init__(self) -> None:
        self._vectors: dict[tuple[Any, ...], Tensor] = {}

    def run(
        self,
        param_groups: list[dict[str, Any]],
        state: Any,
        excluded: Callable[[Tensor], bool],
        options: FactorOptions,
        stats: TrustStatsBuilder | None,
        ahead: bool = False,
    ) -> None:
        """One compiled call per device, dtypes and momentum options; the momentum buffers
        are the inner SGD's `state[p]["momentum_buffer"]`.

        ``ahead``: compile only, with lr 0 and throw-away momentum buffers (zero ``g`` and
        lr 0 leave ``w`` exactly as it is).
        """
        calls: dict[tuple[Any, ...], FoldedCall] = {}
        offset = 0
        for group in param_groups:
            _check_foldable_group(group)
            hyper = SgdHyper(
                momentum=float(group["momentum"]),
                dampening=float(group["dampening"]),
                nesterov=bool(group["nesterov"]),
            )
            for k, param, grad in dense_grads(group["params"]):
                key = (param.device, param.dtype, grad.dtype, hyper)
                call = calls.setdefault(key, FoldedCall(hyper))
                buf = None if ahead else state.get(param, {}).get("momentum_buffer")
                call.add(offset + k, param, grad, buf, group, not excluded(param))
            offset += len(group["params"])
        for call in calls.values():
            lr = call.lr_vector(ahead)
            factors = call.run(
                self._vector, lr, options.trust_coefficient, options.eps, options.clip
            )
            if not ahead and call.hyper.momentum != 0:
                for param, buf in zip(call.params, call.bufs, strict=True):
                    state[param]["momentum_buffer"] = buf
            if stats is not None:
                clipped = (
                    factors.adapted & (factors.local_lr < lr)
                    if options.clip
                    else torch.zeros_like(factors.adapted)
                )
                stats.add(
                    call.indices,
                    factors.weight_norm,
                    factors.grad_norm,
                    torch.where(factors.adapted, factors.local_lr, float("nan")),
                    factors.factor,
                    clipped,
                    factors.adapted,
                    lr,
                )

    def _vector(self, values: tuple[Any, ...], like: Tensor) -> Tensor:
        """A 1-D tensor of ``values`` on ``like``'s device, cached, so that a steady-state
        step builds nothing. All-equal values are filled on the device; mixed ones (an
        exclusion mask, per-group weight decays) are uploaded, once."""
        dtype = torch.bool if isinstance(values[0], bool) else like.dtype
        key = (like.device, dtype, values)  # dtype too: (1.0,) == (True,) in Python
        vector = self._vectors.get(key)
        if vector is None:
            if len(self._vectors) > 64:  # the exclusion rule or weight decays keep changing
                self._vectors.clear()
            if all(v == values[0] for v in values):
                vector = torch.full((len(values),), values[0], dtype=dtype, device=like.device)
            else:
                vector = torch.tensor(values, dtype=dtype, device=like.device)
            self._vectors[key] = vector
        return vector


def check_foldable(optimizer: Optimizer, fused: bool) -> None:
    """LARC(fold_into_sgd=True)'s argument checks: it wraps a plain SGD, and not fused."""
    if type(optimizer) is not torch.optim.SGD:
        raise TypeError(
            "LARC(fold_into_sgd=True) performs torch.optim.SGD's update itself: it wraps an "
            f"SGD, got {type(optimizer).__name__}"
        )
    if fused:
        raise ValueError("LARC: fused and fold_into_sgd exclude each other (fold is fused too)")


def _check_foldable_group(group: dict[str, Any]) -> None:
    if group.get("maximize", False):
        raise ValueError("LARC does not support maximize=True")
    if group.get("differentiable", False):
        raise ValueError("LARC(fold_into_sgd=True) does not support differentiable=True")
