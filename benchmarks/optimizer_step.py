"""Times one optimizer step on ResNet50's parameters: SGD, an apex-style LARC loop, larsbench LARC.

Run from the repository root:

    python benchmarks/optimizer_step.py            # CPU, 2 threads, 30 interleaved repetitions
    python benchmarks/optimizer_step.py --reps 60 --threads 4
    python benchmarks/optimizer_step.py --parts    # and where LARC's extra time goes
    python benchmarks/optimizer_step.py --device cuda   # on a GPU (synchronised timing), and
                                                        # kernels per step from the profiler

Gradients are random and fixed; before every timed step they are copied back in (untimed),
because LARC rescales them in place and repeated rescaling would drift into denormals. The
variants take turns within each repetition (rotating who goes first) so that drifts of a
shared machine hit them alike. The table reports median times, and each ratio is the median
over repetitions of that repetition's ratio (a repetition's steps run back to back, so a
load swing on the shared machine moves them together and mostly cancels out). The verdict
line compares the fastest LARC mode with SGD (target <= 1.3x). With ``--device cuda`` a
second table counts each variant's GPU kernels (and memcpy/memset) in one step with
torch.profiler, and the CPU-side launch calls. Results go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torchvision

from larsbench.optim import LARC
from larsbench.optim.kernels import l2_norms

MOMENTUM = 0.9
WEIGHT_DECAY = 5e-5
LR = 0.1
TRUST_COEFFICIENT = 0.02
TARGET = 1.3  # the fastest LARC mode's step over SGD's (issue 14)
FUSED = "larsbench LARC, fused=True"
FOLDED = "larsbench LARC, fold_into_sgd=True"
COMPILED = (FUSED, FOLDED)


class LoopLARC:
    """The baseline: apex's LARC algorithm as apex writes it, one tensor at a time.

    The Python ``if`` on the two norms reads them to the host (a device sync per tensor on
    a GPU; on the CPU only the per-tensor overhead remains).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, trust_coefficient: float) -> None:
        self.optimizer = optimizer
        self.trust_coefficient = trust_coefficient
        self.eps = 1e-8

    @torch.no_grad()
    def step(self) -> None:
        weight_decays = []
        for group in self.optimizer.param_groups:
            weight_decay = group["weight_decay"]
            weight_decays.append(weight_decay)
            group["weight_decay"] = 0
            for p in group["params"]:
                if p.grad is None:
                    continue
                param_norm = torch.norm(p)
                grad_norm = torch.norm(p.grad)
                if param_norm != 0 and grad_norm != 0:
                    local_lr = (
                        self.trust_coefficient
                        * param_norm
                        / (grad_norm + param_norm * weight_decay + self.eps)
                    )
                    local_lr = min(local_lr / group["lr"], 1)
                    p.grad += weight_decay * p
                    p.grad *= local_lr
        self.optimizer.step()
        for group, weight_decay in zip(self.optimizer.param_groups, weight_decays, strict=True):
            group["weight_decay"] = weight_decay


class Variant:
    """One optimizer over its own copy of the parameters, with fixed gradients to restore."""

    def __init__(
        self,
        name: str,
        make: Callable[[list[torch.nn.Parameter]], object],
        values: list[torch.Tensor],
        grads: list[torch.Tensor],
    ) -> None:
        self.name = name
        self.params = [torch.nn.Parameter(v.clone()) for v in values]
        for p, g in zip(self.params, grads, strict=True):
            p.grad = g.clone()
        self.source_grads = grads
        self.optimizer = make(self.params)
        self.times: list[float] = []

    def restore_grads(self) -> None:
        torch._foreach_copy_([p.grad for p in self.params], self.source_grads)

    def timed_step(self) -> None:
        self.restore_grads()
        self.times.append(timed(self.optimizer.step))


def timed(fn: Callable[[], object]) -> float:
    """Seconds fn takes, its device work included (a benchmark may sync; training may not)."""
    synchronize()
    start = time.perf_counter()
    fn()
    synchronize()
    return time.perf_counter() - start


def synchronize() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def sgd(params: list[torch.nn.Parameter]) -> torch.optim.SGD:
    # torch's default implementation: multi-tensor (foreach) on CUDA, a per-tensor loop on the CPU
    return torch.optim.SGD(params, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)


def fused_sgd(params: list[torch.nn.Parameter]) -> torch.optim.SGD:
    # torch's fused kernel: what larsbench's SGD runs use on CUDA (train/setup.py)
    return torch.optim.SGD(params, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY, fused=True)


def time_parts(
    values: list[torch.Tensor], grads: list[torch.Tensor], reps: int
) -> dict[str, float]:
    """Median ms of each multi-tensor pass larsbench's LARC adds to the SGD step, on copies of
    the same tensors, interleaved like the variants."""
    params = [v.clone() for v in values]
    work = [g.clone() for g in grads]
    n = len(params)
    decay = torch.full((n,), WEIGHT_DECAY, device=params[0].device).unbind()
    factor = torch.rand(n, device=params[0].device).unbind()
    parts: dict[str, Callable[[], object]] = {
        "norms of w and g (l2_norms)": lambda: l2_norms(params + work),
        "g += decay * w (_foreach_addcmul_)": lambda: torch._foreach_addcmul_(work, decay, params),
        "g *= factor (_foreach_mul_)": lambda: torch._foreach_mul_(work, factor),
    }
    times: dict[str, list[float]] = {name: [] for name in parts}
    for rep in range(reps):
        names = list(parts)
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            torch._foreach_copy_(work, grads)  # untimed, as for the variants
            times[name].append(timed(parts[name]))
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--parts", action="store_true", help="also time LARC's passes alone")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet50().to(args.device)
    values = [p.detach() for p in model.parameters()]
    grads = [torch.randn_like(v) * 1e-3 for v in values]
    variants = [
        Variant("SGD", sgd, values, grads),
        Variant("SGD, fused=True", fused_sgd, values, grads),
        Variant(
            "apex-style loop LARC",
            lambda ps: LoopLARC(sgd(ps), TRUST_COEFFICIENT),
            values,
            grads,
        ),
        Variant("larsbench LARC", lambda ps: LARC(sgd(ps), TRUST_COEFFICIENT), values, grads),
        Variant(
            "larsbench LARC, stats every step",
            lambda ps: LARC(sgd(ps), TRUST_COEFFICIENT, stats_every=1),
            values,
            grads,
        ),
        Variant(FUSED, lambda ps: LARC(sgd(ps), TRUST_COEFFICIENT, fused=True), values, grads),
        Variant(
            FOLDED,
            lambda ps: LARC(sgd(ps), TRUST_COEFFICIENT, fold_into_sgd=True),
            values,
            grads,
        ),
    ]
    first_step_s = {}
    for variant in variants:
        for k in range(args.warmup):
            variant.restore_grads()
            seconds = timed(variant.optimizer.step)
            if k == 0:
                first_step_s[variant.name] = seconds
    for rep in range(args.reps):
        shift = rep % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            variant.timed_step()

    n_params = sum(v.numel() for v in values)
    where = (
        torch.cuda.get_device_name(args.device)
        if args.device.startswith("cuda")
        else f"{args.threads} threads, {platform.processor() or 'cpu'}"
    )
    print(
        f"ResNet50: {len(values)} tensors, {n_params / 1e6:.1f} M parameters; "
        f"torch {torch.__version__}, {where}; "
        f"median of {args.reps} interleaved steps"
    )
    medians = {v.name: statistics.median(v.times) * 1e3 for v in variants}
    by_name = {v.name: v.times for v in variants}
    base = medians["SGD"]
    if args.parts:
        print()
        print(f"| {'pass (same tensors, alone)':<34} | {'ms':>7} | {'vs SGD':>7} |")
        print(f"|{'-' * 36}|{'-' * 9}:|{'-' * 9}:|")
        parts = time_parts(values, grads, args.reps)
        for name, ms in parts.items():
            print(f"| {name:<34} | {ms:7.1f} | {ms / base:6.2f}x |")
        total = sum(parts.values())
        print(f"| {'sum':<34} | {total:7.1f} | {total / base:6.2f}x |")
        print()
    print(f"| {'variant':<36} | {'ms':>7} | {'vs loop':>7} | {'vs SGD':>7} |")
    print(f"|{'-' * 38}|{'-' * 9}:|{'-' * 9}:|{'-' * 9}:|")
    for name, ms in medians.items():
        vs_loop = paired_ratio(by_name[name], by_name["apex-style loop LARC"])
        vs_sgd = paired_ratio(by_name[name], by_name["SGD"])
        print(f"| {name:<36} | {ms:7.1f} | {vs_loop:6.2f}x | {vs_sgd:6.2f}x |")
    for name in COMPILED:
        print(f"first step of {name}, compiling included: {first_step_s[name]:.1f} s")
    ratios = {
        name: paired_ratio(by_name[name], by_name["SGD"])
        for name in by_name
        if name.startswith("larsbench LARC") and "stats" not in name
    }
    fastest = min(ratios, key=ratios.__getitem__)
    verdict = "ok" if ratios[fastest] <= TARGET else "MISSED"
    print(
        f"fastest LARC mode: {fastest}, {ratios[fastest]:.2f}x SGD (target <= {TARGET}x: {verdict})"
    )
    if args.device.startswith("cuda"):
        print()
        print_kernel_counts(variants)


def print_kernel_counts(variants: list[Variant]) -> None:
    """One profiled step per variant: kernels that ran on the GPU, and launch calls."""
    from torch.profiler import DeviceType, ProfilerActivity, profile

    print(f"| {'variant, one step':<36} | {'GPU kernels':>11} | {'launch calls':>12} |")
    print(f"|{'-' * 38}|{'-' * 12}:|{'-' * 13}:|")
    for variant in variants:
        variant.restore_grads()
        synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            variant.optimizer.step()
            synchronize()
        events = prof.key_averages()
        kernels = sum(e.count for e in events if e.device_type == DeviceType.CUDA)
        launches = sum(e.count for e in events if "LaunchKernel" in e.key or "GraphLaunch" in e.key)
        print(f"| {variant.name:<36} | {kernels:11d} | {launches:12d} |")


def paired_ratio(times: list[float], baseline: list[float]) -> float:
    """Median over repetitions of times[i] / baseline[i] (both timed in repetition i)."""
    return statistics.median(t / b for t, b in zip(times, baseline, strict=True))


if __name__ == "__main__":
    main()
