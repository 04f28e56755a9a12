"""LARC's multi-tensor kernels: norms, the gradient update, and LARC folded into SGD's update.

larc.py holds the algorithm; this module holds how it runs fast on a device. Every function
here stays on the device (no host sync) and takes lists of tensors that share device and
dtypes (see ``bucketed``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.utils._foreach_utils import _get_foreach_kernels_supported_devices


@dataclass
class Bucket:
    """Tensors of one param group that share device and dtypes, so foreach ops take them."""

    params: list[Tensor] = field(default_factory=list)
    grads: list[Tensor] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)


def dense_grads(params: list[Tensor]) -> Iterator[tuple[int, Tensor, Tensor]]:
    """(index in the group, parameter, gradient) of each parameter that has a gradient;
    a sparse gradient is an error (LARC's norms and updates are dense)."""
    for k, param in enumerate(params):
        grad = param.grad
        if grad is None:
            continue
        if grad.is_sparse:
            raise ValueError("LARC does not support sparse gradients")
        yield k, param, grad


def bucketed(items: Iterable[tuple[int, Tensor, Tensor]]) -> list[Bucket]:
    """(flat index, param, grad) triples grouped by (device, param dtype, grad dtype)."""
    buckets: dict[tuple[torch.device, torch.dtype, torch.dtype], Bucket] = {}
    for index, param, grad in items:
        bucket = buckets.setdefault((param.device, param.dtype, grad.dtype), Bucket())
        bucket.params.append(param)
        bucket.grads.append(grad)
        bucket.indices.append(index)
    return list(buckets.values())


def l2_norms(tensors: list[Tensor]) -> Tensor:
    """The L2 norm of each tensor, stacked into one 1-D tensor on their device. No sync.

    Where the device has multi-tensor kernels (CUDA) this is one ``torch._foreach_norm``.
    Elsewhere (CPU) foreach ops are a loop over the tensors anyway, and there ``sqrt(w . w)``
    through BLAS ``dot`` is about 1.3x faster than ``vector_norm`` on float32 at 2 threads and
    closer to a float64 reference (ResNet50's tensors: 6e-6 relative vs 4e-5), so float32 and
    float64 take it.
    """
    first = tensors[0]
    if first.device.type in _get_foreach_kernels_supported_devices() or first.dtype not in (
        torch.float32,
        torch.float64,
    ):
        return torch.stack(torch._foreach_norm(tensors))
    flat = [t.reshape(-1) for t in tensors]  # a view when contiguous, the usual case
    return torch.stack([torch.dot(f, f) for f in flat]).sqrt()


def decay_and_scale(
    grads: list[Tensor], params: list[Tensor], decay: Tensor, factor: Tensor
) -> None:
    """g <- (g + decay * w) * factor in place, with one value of decay and factor per tensor.

    Eager, these are two multi-tensor passes over the gradients; no eager op computes
    ``a * g + b * w`` with per-tensor device scalars in one.
    """
    # decay first: foreach has a multi-tensor CUDA path for a 0-d tensor1 list
    torch._foreach_addcmul_(grads, decay.unbind(), params)
    torch._foreach_mul_(grads, factor.unbind())


@functools.cache
def fused_decay_and_scale() -> Callable[[list[Tensor], list[Tensor], Tensor, Tensor], None]:
    """``decay_and_scale`` through ``torch.compile``: one generated pass per tensor (Triton on
    a GPU, C++ on the CPU). The first call compiles, once per set of tensor shapes; past
    torch._dynamo's recompile limit (8 sets) a call runs eager (not fullgraph=True: that
    would raise there)."""
    return torch.compile(decay_and_scale, dynamic=False)


class PendingUpdates:
    """One step's decay-and-scale updates, gathered per device and dtype so that each runs
    as one call: one compiled graph with ``fused=True`` however many param groups."""

    def __init__(self) -> None:
        self._parts: dict[tuple[torch.device, torch.dtype], tuple[list[Tensor], ...]] = {}

    def add(self, grads: list[Tensor], params: list[Tensor], decay: Tensor, factor: Tensor) -> None:
        gs, ps, decays, factors = self._parts.setdefault(
            (decay.device, decay.dtype), ([], [], [], [])
        )
        gs.extend(grads)
        ps.extend(params)
        decays.append(decay)
        factors.append(factor)

    def apply(self, fused: bool) -> None:
        update = fused_decay_and_scale() if fused else decay_and_scale
        for gs, ps, decays, factors in self._parts.values():
            update(gs, ps, torch.cat(decays), torch.cat(factors))


@dataclass(frozen=True)
class SgdHyper:
    """What the compiled SGD update bakes in as constants (a change recompiles): the momentum
    options of the param groups in one call."""

    momentum: float
    dampening: float
    nesterov: bool


@dataclass(frozen=True)
class Factors:
    """LARC's per-tensor quantities of one step (1-D, one entry per tensor, on the device):
    what the update applies and what the statistics record."""

    weight_norm: Tensor
    grad_norm: Tensor
    local_lr: Tensor
    factor: Tensor
    decay: Tensor
    adapted: Tensor


def larc_factors(
    params: list[Tensor],
    grads: list[Tensor],
    lr: Tensor,
    weight_decay: Tensor,
    adapt: Tensor,
    trust_coefficient: float,
    eps: float,
    clip: bool,
) -> Factors:
    """LARC's factor and weight decay of every tensor, from one norm pass over w and g.

    ``lr``, ``weight_decay`` (the group's) and ``adapt`` (False: excluded) are 1-D, one
    entry per tensor. Where ``adapt`` and both norms are non-zero the tensor is adapted;
    elsewhere the factor is 1, and the decay is the group's for an excluded tensor (plain
    SGD) and 0 for a zero-norm one (apex leaves it untouched). A handful of multi-tensor
    and vector ops, eager: no compile, and on CUDA a few launches (one ``_foreach_norm``).
    """
    n = len(params)
    norms = l2_norms(params + grads)
    w_norm, g_norm = norms[:n], norms[n:]
    # The same operations, in the same order, as apex's per-tensor formula.
    local_lr = trust_coefficient * w_norm / (g_norm + w_norm * weight_decay + eps)
    adapted = adapt & (w_norm != 0) & (g_norm != 0)
    factor = torch.clamp(local_lr / lr, max=1.0) if clip else local_lr
    factor = torch.where(adapted, factor, 1.0)
    decay = torch.where(adapted | ~adapt, weight_decay, 0.0)
    return Factors(w_norm, g_norm, local_lr, factor, decay, adapted)


def sgd_update_with_factor(
    params: list[Tensor],
    grads: list[Tensor],
    bufs: list[Tensor],
    lr: Tensor,
    decay: Tensor,
    factor: Tensor,
    keep: Tensor,
    hyper: SgdHyper,
) -> None:
    """SGD's update of LARC's adapted gradient, without writing the gradient. Per tensor::

        d    = (g + decay * w) * factor
        buf  = buf * momentum + d * (1 - dampening)   where keep, else d (a new buffer)
        w   -= lr * (d + momentum * buf  if nesterov else  buf)

    the very operations, in the very order, of LARC's update then ``torch.optim.SGD``'s.
    ``lr``, ``decay``, ``factor``, ``keep`` (1: the buffer exists, 0: new, zeroed) are 1-D,
    one entry per tensor; ``bufs`` is ignored (may be empty) when ``hyper.momentum == 0``.
    Eager this is several passes; through ``torch.compile`` (``compiled_sgd_update``) one
    pass per tensor that reads g, w and buf and writes buf and w.
    """
    step = torch._foreach_add(grads, torch._foreach_mul(params, decay.unbind()))
    torch._foreach_mul_(step, factor.unbind())
    if hyper.momentum != 0:
        torch._foreach_mul_(bufs, (keep * hyper.momentum).unbind())
        torch._foreach_add_(bufs, torch._foreach_mul(step, (1 - keep * hyper.dampening).unbind()))
        if hyper.nesterov:
            torch._foreach_add_(step, bufs, alpha=hyper.momentum)
        else:
            step = bufs
    torch._foreach_sub_(params, torch._foreach_mul(step, lr.unbind()))


@functools.cache
def compiled_sgd_update() -> Callable[..., None]:
    """``sgd_update_with_factor`` through ``torch.compile`` (C++ on the CPU, Triton on a GPU).

    Inductor lowers the foreach ops to one fused loop per tensor, and on CUDA groups those
    loops horizontally into a few kernels (counted by ``benchmarks/optimizer_step.py
    --device cuda``; not measured on a GPU yet). The first call compiles, once per set of
    tensor shapes and ``SgdHyper``.
    """
    return torch.compile(sgd_update_with_factor, dynamic=False)


class FoldedCall:
    """The tensors of one ``larc_sgd_update`` call, gathered over param groups."""

    def __init__(self, hyper: SgdHyper) -> None:
        self.hyper = hyper
        self.indices: list[int] = []
        self.params: list[Tensor] = []
        self.grads: list[Tensor] = []
        self.bufs: list[Tensor] = []
        self.keep: list[float] = []
        self.adapt: list[bool] = []
        self.weight_decay: list[float] = []
        self._lrs: list[tuple[float | Tensor, int]] = []  # (group lr, its tensors), in order

    def add(
        self,
        index: int,
        param: Tensor,
        grad: Tensor,
        buf: Tensor | None,
        group: dict[str, Any],
        adapt: bool,
    ) -> None:
        self.indices.append(index)
        self.params.append(param)
        self.grads.append(grad)
        if self.hyper.momentum != 0:
            self.keep.append(0.0 if buf is None else 1.0)
            self.bufs.append(torch.zeros_like(grad) if buf is None else buf)
        self.adapt.append(adapt)
        self.weight_decay.append(float(group["weight_decay"]))
        lr = group["lr"]
        if self._lrs and self._lrs[-1][0] is lr:
            self._lrs[-1] = (lr, self._lrs[-1][1] + 1)
        else:
            self._lrs.append((lr, 1))

    def lr_vector(self, ahead: bool) -> Tensor:
        """Each tensor's group lr, filled on the device (lr changes every step: no upload)."""
        like = self.params[0]
        if ahead:
            return torch.zeros(len(self.params), dtype=like.dtype, device=like.device)
        parts = [
            lr.to(like.device, like.dtype).expand(n)
            if isinstance(lr, Tensor)
            else torch.full((n,), lr, dtype=like.dtype, device=like.device)
            for lr, n in self._lrs
        ]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def run(
        self,
        vector: Callable[[tuple[Any, ...], Tensor], Tensor],
        lr: Tensor,
        trust_coefficient: float,
        eps: float,
        clip: bool,
    ) -> Factors:
        """LARC's factors (eager), then SGD's update with them (compiled)."""
        like = self.params[0]
        factors = larc_factors(
            self.params,
            self.grads,
            lr,
            vector(tuple(self.weight_decay), like),
            vector(tuple(self.adapt), like),
            trust_coefficient,
            eps,
            clip,
        )
        compiled_sgd_update()(
            self.params,
            self.grads,
            self.bufs,
            lr,
            factors.decay,
            factors.factor,
            vector(tuple(self.keep) or (0.0,), like),
            self.hyper,
        )
        return factors
