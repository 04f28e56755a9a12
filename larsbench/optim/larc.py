"""LARC: layer-wise adaptive rate clipping around any torch optimizer, with no host-device sync."""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.utils._foreach_utils import _get_foreach_kernels_supported_devices

from larsbench.optim.trust_stats import TrustRatioStats, TrustStatsBuilder

ExcludeFn = Callable[[Tensor], bool]


def _is_bias_or_norm(param: Tensor) -> bool:
    return param.ndim <= 1


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


class _PendingUpdates:
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


class _Bucket:
    """Tensors of one param group that share device and dtypes, so foreach ops take them."""

    __slots__ = ("grads", "indices", "params")

    def __init__(self) -> None:
        self.params: list[Tensor] = []
        self.grads: list[Tensor] = []
        self.indices: list[int] = []


def _bucketed(items: Iterable[tuple[int, Tensor, Tensor]]) -> list[_Bucket]:
    buckets: dict[tuple[torch.device, torch.dtype, torch.dtype], _Bucket] = {}
    for index, param, grad in items:
        key = (param.device, param.dtype, grad.dtype)
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = _Bucket()
        bucket.params.append(param)
        bucket.grads.append(grad)
        bucket.indices.append(index)
    return list(buckets.values())


class LARC(Optimizer):
    """Layer-wise adaptive rate clipping (apex ``LARC`` semantics) wrapped around an optimizer.

    For every parameter tensor ``w`` with gradient ``g`` in a group with learning rate ``lr``
    and weight decay ``wd``, where both ``||w||`` and ``||g||`` are non-zero::

        local_lr = trust_coefficient * ||w|| / (||g|| + wd * ||w|| + eps)
        factor   = min(local_lr / lr, 1)  if clip  else  local_lr
        g       <- (g + wd * w) * factor

    Where either norm is zero, ``g`` is left as it is and the tensor gets no weight decay in
    that step. Then the wrapped optimizer steps with each adapted group's weight decay set
    to 0 (LARC applied it); the group's value is restored before ``step()`` returns.
    Gradients are modified in place, as in apex.

    Options beyond apex (the defaults keep apex behaviour):

    - ``exclude``: a predicate on the parameter tensor; ``True`` leaves the tensor out of
      the adaptation. ``exclude_bias_and_norm=True`` excludes every tensor with ``ndim <= 1``
      (biases, BatchNorm weights), as timm and MLPerf do. Both may be given (either
      excludes). An excluded tensor gets plain inner-optimizer treatment: in a group that
      holds only excluded tensors the inner optimizer applies its weight decay itself; in a
      mixed group LARC adds ``wd * w`` to the gradient, which is exactly what SGD's (coupled,
      L2) weight decay does. The predicate runs every step on each parameter with a grad;
      keep it cheap. To exclude by name, close over a mapping::

          names = {id(p): n for n, p in model.named_parameters()}
          LARC(sgd, exclude=lambda p: "bn" in names[id(p)])

    - ``fused``: apply ``g <- (g + decay * w) * factor`` as one pass over each gradient, a
      kernel generated by ``torch.compile``, instead of two eager multi-tensor passes. It
      compiles in the first ``step()``, or ahead in ``compile_fused_update()`` (about 50 s
      on a 2-core CPU for ResNet50, 5 s once Inductor's on-disk cache has it); it needs what
      ``torch.compile`` needs (a C++ compiler on the CPU, Triton on a GPU).

    - ``stats_every``: on steps where the LARC step count (1-based number of ``step()``
      calls) is a multiple of it, record a :class:`TrustRatioStats` in ``latest_stats``
      (0 = never). Recording stays on the device; ``TrustRatioStats.to_host()`` is the one
      place a host sync happens.

    ``step()`` itself never syncs with the device: norms, ratios, masks and factors stay on
    the device (``l2_norms``, ``torch.where``, foreach multiply/add): norms and factors per
    param group, device and dtype, then the gradient update of all groups in one call per
    device and dtype.

    It is a ``torch.optim.Optimizer``: ``param_groups``, ``state`` and ``defaults`` are the
    wrapped optimizer's own objects, so LR schedulers drive the inner learning rate and
    ``torch.amp.GradScaler`` unscales the gradients LARC then sees. ``state_dict()`` is the
    inner optimizer's plus a ``"larc"`` entry with the step count; ``load_state_dict()``
    accepts both that and a plain inner-optimizer state dict.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        trust_coefficient: float = 0.02,
        clip: bool = True,
        eps: float = 1e-8,
        *,
        exclude: ExcludeFn | None = None,
        exclude_bias_and_norm: bool = False,
        stats_every: int = 0,
        fused: bool = False,
    ) -> None:
        # Optimizer.__init__ is not called on purpose: it would build a second set of
        # param_groups and state. The attributes it sets that are LARC's own follow.
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"LARC wraps a torch.optim.Optimizer, got {type(optimizer).__name__}")
        if isinstance(optimizer, LARC):
            raise TypeError("LARC cannot wrap another LARC")
        if not trust_coefficient > 0.0:
            raise ValueError(f"trust_coefficient must be > 0, got {trust_coefficient}")
        if not eps >= 0.0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        if isinstance(stats_every, bool) or not isinstance(stats_every, int) or stats_every < 0:
            raise ValueError(f"stats_every must be an int >= 0, got {stats_every!r}")
        self.optimizer = optimizer
        self.trust_coefficient = float(trust_coefficient)
        self.clip = bool(clip)
        self.eps = float(eps)
        self.exclude = exclude
        self.exclude_bias_and_norm = bool(exclude_bias_and_norm)
        self.stats_every = stats_every
        self.fused = bool(fused)
        self._larc_step = 0
        self._latest_stats: TrustRatioStats | None = None
        self._optimizer_step_pre_hooks = OrderedDict()
        self._optimizer_step_post_hooks = OrderedDict()
        self._optimizer_state_dict_pre_hooks = OrderedDict()
        self._optimizer_state_dict_post_hooks = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks = OrderedDict()
        self._optimizer_load_state_dict_post_hooks = OrderedDict()
        self._warned_capturable_if_run_uncaptured = True
        self._patch_step_function()  # step pre/post hooks and profiler labels, as torch's

    # The wrapped optimizer's objects, never copies: schedulers, GradScaler and checkpoint
    # code that touch them touch the inner optimizer.
    @property
    def param_groups(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return self.optimizer.param_groups

    @param_groups.setter
    def param_groups(self, value: list[dict[str, Any]]) -> None:
        self.optimizer.param_groups = value

    @property
    def state(self) -> Any:  # type: ignore[override]
        return self.optimizer.state

    @state.setter
    def state(self, value: Any) -> None:
        self.optimizer.state = value

    @property
    def defaults(self) -> dict[str, Any]:  # type: ignore[override]
        return self.optimizer.defaults

    @defaults.setter
    def defaults(self, value: dict[str, Any]) -> None:
        self.optimizer.defaults = value

    @property
    def step_count(self) -> int:
        """Number of ``step()`` calls so far (steps GradScaler skipped do not count)."""
        return self._larc_step

    @property
    def latest_stats(self) -> TrustRatioStats | None:
        """The statistics of the latest recording step, or None before the first one."""
        return self._latest_stats

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("step", None)  # an LR scheduler's per-instance wrapper of step
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._patch_step_function()

    def __repr__(self) -> str:
        extra = f", exclude={self.exclude!r}" if self.exclude is not None else ""
        return (
            f"LARC(trust_coefficient={self.trust_coefficient}, clip={self.clip}, eps={self.eps}, "
            f"exclude_bias_and_norm={self.exclude_bias_and_norm}{extra}, "
            f"stats_every={self.stats_every}, fused={self.fused}) wrapping {self.optimizer!r}"
        )

    def _excluded(self, param: Tensor) -> bool:
        if self.exclude_bias_and_norm and _is_bias_or_norm(param):
            return True
        return self.exclude is not None and bool(self.exclude(param))

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Adapt the gradients, then step the wrapped optimizer. Never syncs with the device."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._larc_step += 1
        record = self.stats_every > 0 and self._larc_step % self.stats_every == 0
        stats = TrustStatsBuilder(self._larc_step) if record else None
        taken_over, updates = self._adapt_groups(stats)
        updates.apply(self.fused)

        try:
            for group, _ in taken_over:
                group["weight_decay"] = 0.0
            self.optimizer.step()
        finally:
            for group, wd in taken_over:
                group["weight_decay"] = wd

        if stats is not None:
            self._latest_stats = stats.build()
        return loss

    @torch.no_grad()
    def compile_fused_update(self) -> None:
        """With ``fused=True``: compile the update now instead of in the first ``step()``.

        Runs the update once on zero gradients for every parameter that requires grad (the
        graph depends only on which tensors take part, not on values), then removes them:
        parameters, optimizer state and ``step_count`` stay as they were. Call it before the
        first backward, so that training's first step is not the one that compiles; a
        parameter with a gradient already raises ``RuntimeError``. Does nothing without
        ``fused``. On a GPU the kernel launch is asynchronous: synchronise before timing it.
        """
        if not self.fused:
            return
        params = [p for group in self.param_groups for p in group["params"] if p.requires_grad]
        if any(p.grad is not None for p in params):
            raise RuntimeError(
                "LARC.compile_fused_update() runs before the first backward: a parameter "
                "already has a gradient"
            )
        try:
            for p in params:
                p.grad = torch.zeros_like(p)
            _, updates = self._adapt_groups(None)
            updates.apply(fused=True)
        finally:
            for p in params:
                p.grad = None

    def _adapt_groups(
        self, stats: TrustStatsBuilder | None
    ) -> tuple[list[tuple[dict[str, Any], Any]], _PendingUpdates]:
        """Norms, factors and weight decay of every group; the gradient updates are queued.

        Returns the groups whose weight decay LARC takes over (with their value) and the
        queued updates.
        """
        taken_over: list[tuple[dict[str, Any], Any]] = []
        updates = _PendingUpdates()
        offset = 0
        for group in self.param_groups:
            if group.get("maximize", False):
                raise ValueError("LARC does not support maximize=True")
            adapted: list[tuple[int, Tensor, Tensor]] = []
            excluded: list[tuple[int, Tensor, Tensor]] = []
            for k, param in enumerate(group["params"]):
                grad = param.grad
                if grad is None:
                    continue
                if grad.is_sparse:
                    raise ValueError("LARC does not support sparse gradients")
                item = (offset + k, param, grad)
                (excluded if self._excluded(param) else adapted).append(item)
            offset += len(group["params"])

            wd = group.get("weight_decay", 0.0)
            lr = group["lr"]
            if excluded and stats is not None:
                for bucket in _bucketed(excluded):
                    self._record_excluded(stats, bucket, lr)
            if not adapted:
                continue  # the inner optimizer handles this group on its own, weight decay too
            has_wd = isinstance(wd, Tensor) or wd != 0
            for bucket in _bucketed(adapted):
                self._adapt(bucket, lr, wd, has_wd, stats, updates)
            if excluded and has_wd:
                for bucket in _bucketed(excluded):
                    if isinstance(wd, Tensor):
                        torch._foreach_add_(bucket.grads, torch._foreach_mul(bucket.params, wd))
                    else:
                        torch._foreach_add_(bucket.grads, bucket.params, alpha=wd)
            if "weight_decay" in group:
                taken_over.append((group, wd))
        return taken_over, updates

    def _adapt(
        self,
        bucket: _Bucket,
        lr: float | Tensor,
        wd: float | Tensor,
        has_wd: bool,
        stats: TrustStatsBuilder | None,
        updates: _PendingUpdates,
    ) -> None:
        """g <- (g + decay * w) * factor for one bucket, all on the device (with weight decay,
        queued in `updates`)."""
        params, grads = bucket.params, bucket.grads
        n = len(params)
        norms = l2_norms(params + grads)
        w_norm, g_norm = norms[:n], norms[n:]
        # The same operations, in the same order, as apex's per-tensor formula.
        local_lr = self.trust_coefficient * w_norm / (g_norm + w_norm * wd + self.eps)
        adapted = (w_norm != 0) & (g_norm != 0)
        factor = torch.clamp(local_lr / lr, max=1.0) if self.clip else local_lr
        factor = torch.where(adapted, factor, 1.0)
        if has_wd:
            # Zero decay where a norm is zero: those tensors get no weight decay this step.
            updates.add(grads, params, adapted.to(w_norm.dtype) * wd, factor)
        else:
            torch._foreach_mul_(grads, factor.unbind())  # one pass already
        if stats is not None:
            clipped = adapted & (local_lr < lr) if self.clip else torch.zeros_like(adapted)
            stats.add(
                bucket.indices,
                w_norm,
                g_norm,
                torch.where(adapted, local_lr, float("nan")),
                factor,
                clipped,
                adapted,
                lr,
            )

    def _record_excluded(
        self, stats: TrustStatsBuilder, bucket: _Bucket, lr: float | Tensor
    ) -> None:
        n = len(bucket.params)
        norms = l2_norms(bucket.params + bucket.grads)
        untouched = torch.zeros(n, dtype=torch.bool, device=norms.device)
        stats.add(
            bucket.indices,
            norms[:n],
            norms[n:],
            torch.full_like(norms[:n], float("nan")),
            torch.ones_like(norms[:n]),
            untouched,
            untouched,
            lr,
        )

    def zero_grad(self, set_to_none: bool = True) -> None:
        """The wrapped optimizer's ``zero_grad``."""
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """The wrapped optimizer's ``add_param_group``."""
        self.optimizer.add_param_group(param_group)

    def state_dict(self) -> dict[str, Any]:
        """The wrapped optimizer's state dict plus ``"larc": {"step": step_count}``."""
        for pre_hook in self._optimizer_state_dict_pre_hooks.values():
            pre_hook(self)
        state_dict = self.optimizer.state_dict()
        state_dict["larc"] = {"step": self._larc_step}
        for post_hook in self._optimizer_state_dict_post_hooks.values():
            result = post_hook(self, state_dict)
            if result is not None:
                state_dict = result
        return state_dict

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a ``state_dict()`` of LARC, or a plain one of the wrapped optimizer."""
        state_dict = dict(state_dict)
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():
            result = pre_hook(self, state_dict)
            if result is not None:
                state_dict = dict(result)
        larc = state_dict.pop("larc", None)
        self.optimizer.load_state_dict(state_dict)
        if larc is not None:
            self._larc_step = int(larc["step"])
        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)
