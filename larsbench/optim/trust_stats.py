"""Per-tensor trust-ratio statistics that LARC records on the device, and their names."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# Float fields of TrustRatioStats, in the row order that to_host() stacks them.
_FLOAT_FIELDS = ("weight_norm", "grad_norm", "local_lr", "factor", "lr")
_BOOL_FIELDS = ("clipped", "adapted")


@dataclass(frozen=True)
class TrustRatioStats:
    """One LARC step's trust-ratio statistics, still on the device.

    One entry per parameter tensor that had a gradient in that step, in the order of
    ``larc.param_groups`` flattened (group by group, parameter by parameter). Every tensor
    field is 1-D, float32 (bool for ``clipped`` and ``adapted``), on the device of the
    first parameter. Building one costs no host-device sync; ``to_host()`` is the one
    place that reads them back.

    Fields:
        step: the LARC step count (1-based number of ``step()`` calls) when recorded.
        param_index: for each entry, its index into the flattened parameter list, so that
            ``parameter_names(model, optimizer)[i]`` names it.
        weight_norm, grad_norm: L2 norms of the parameter and of its raw gradient (before
            weight decay and adaptation; after GradScaler unscaling).
        local_lr: ``trust_coefficient * ||w|| / (||g|| + wd * ||w|| + eps)``; NaN where the
            tensor was not adapted (a zero norm, or excluded).
        factor: the factor applied to the gradient; 1.0 where the tensor was not adapted.
        clipped: clip mode and ``local_lr < lr``: LARC lowered this tensor's rate.
        adapted: False where a zero norm or the exclusion rule left the tensor alone.
        lr: the group learning rate the entry's tensor was stepped with.
    """

    step: int
    param_index: list[int]
    weight_norm: torch.Tensor
    grad_norm: torch.Tensor
    local_lr: torch.Tensor
    factor: torch.Tensor
    clipped: torch.Tensor
    adapted: torch.Tensor
    lr: torch.Tensor

    def __len__(self) -> int:
        return len(self.param_index)

    def to_host(self) -> dict[str, list]:
        """Read every field back as Python lists: THE host-device sync of the statistics.

        All tensor fields are stacked into one (7, n) tensor and read with a single
        ``.tolist()``, so on a GPU this waits once for the step that produced them. Call it
        where the training loop already syncs (for example next to its loss logging), not
        right after ``step()``. Returns the float fields as ``list[float]``, ``clipped`` and
        ``adapted`` as ``list[bool]`` and ``param_index`` as ``list[int]``.
        """
        rows = [getattr(self, name) for name in _FLOAT_FIELDS]
        rows += [getattr(self, name).to(torch.float32) for name in _BOOL_FIELDS]
        host = torch.stack(rows).tolist()  # the one sync
        out: dict[str, list] = {name: host[i] for i, name in enumerate(_FLOAT_FIELDS)}
        for j, name in enumerate(_BOOL_FIELDS):
            out[name] = [v != 0.0 for v in host[len(_FLOAT_FIELDS) + j]]
        out["param_index"] = list(self.param_index)
        return out


class TrustStatsBuilder:
    """Collects per-bucket statistic vectors during one step and assembles them in order."""

    def __init__(self, step: int) -> None:
        self.step = step
        self._indices: list[list[int]] = []
        self._parts: list[tuple[torch.Tensor, ...]] = []

    def add(
        self,
        indices: list[int],
        weight_norm: torch.Tensor,
        grad_norm: torch.Tensor,
        local_lr: torch.Tensor,
        factor: torch.Tensor,
        clipped: torch.Tensor,
        adapted: torch.Tensor,
        lr: float | torch.Tensor,
    ) -> None:
        """Record one bucket: 1-D tensors with one entry per index of ``indices``; ``lr`` is
        one value for all, or a 1-D tensor with one per index."""
        if isinstance(lr, torch.Tensor) and lr.ndim == 1:
            lr_vec = lr.to(torch.float32)
        else:
            lr_vec = torch.empty_like(weight_norm, dtype=torch.float32).fill_(lr)
        floats = [t.to(torch.float32) for t in (weight_norm, grad_norm, local_lr, factor)]
        self._indices.append(indices)
        self._parts.append((*floats, lr_vec, clipped, adapted))

    def build(self) -> TrustRatioStats | None:
        """The statistics in flattened ``param_groups`` order; None when nothing had a grad."""
        if not self._parts:
            return None
        flat = [i for indices in self._indices for i in indices]
        device = self._parts[0][0].device
        parts = [tuple(t.to(device, non_blocking=True) for t in part) for part in self._parts]
        n_fields = len(parts[0])
        if flat == sorted(flat):
            fields = [torch.cat([part[f] for part in parts]) for f in range(n_fields)]
        else:
            # Buckets (device/dtype, excluded or not) interleave within a group: reorder by
            # restacking 0-d views, which stays on the device (no index tensor to upload).
            order = sorted(range(len(flat)), key=flat.__getitem__)
            fields = []
            for f in range(n_fields):
                scalars = [s for part in parts for s in part[f].unbind()]
                fields.append(torch.stack([scalars[k] for k in order]))
            flat = [flat[k] for k in order]
        return TrustRatioStats(
            self.step,
            flat,
            weight_norm=fields[0],
            grad_norm=fields[1],
            local_lr=fields[2],
            factor=fields[3],
            lr=fields[4],
            clipped=fields[5],
            adapted=fields[6],
        )


def _unwrap(model: nn.Module) -> nn.Module:
    """The module under DDP/DataParallel and torch.compile wrappers."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod  # torch.compile's OptimizedModule
        else:
            return model


def parameter_names(model: nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """Names of the optimizer's parameters in flattened ``param_groups`` order.

    Names come from ``model.named_parameters()`` of the unwrapped model, so a
    DistributedDataParallel's or DataParallel's ``module.`` prefix (and torch.compile's
    ``_orig_mod.``) does not appear. Entry ``i`` names ``TrustRatioStats.param_index`` value
    ``i``. Raises ValueError if the optimizer holds a parameter the model does not have.
    """
    names = {id(p): name for name, p in _unwrap(model).named_parameters()}
    out: list[str] = []
    for g, group in enumerate(optimizer.param_groups):
        for k, p in enumerate(group["params"]):
            name = names.get(id(p))
            if name is None:
                raise ValueError(f"param_groups[{g}]['params'][{k}] is not a parameter of model")
            out.append(name)
    return out
