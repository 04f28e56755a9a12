"""The all-reduce timing worker, one per local rank under torchrun; rank 0 writes the figures
(and, since torch is loaded there anyway, the element count of the run's model for the
storage check).

    python -m torch.distributed.run --standalone --nproc-per-node N \
        -m larsbench.doctor.allreduce --run-config CONFIG.json --sizes 1048576,8388608 \
        --out OUT.json

Bus bandwidth is defined as nccl-tests defines it (doc/PERFORMANCE.md there): algorithm
bandwidth (bytes / time of one all-reduce) times 2(n-1)/n, the share of the data each rank
must send and receive, so that it compares with the speed of the slowest link.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.distributed as dist

from larsbench.plan.run import RunConfig
from larsbench.train.setup import setup_distributed


def bus_factor(world: int) -> float:
    """nccl-tests' all-reduce bus bandwidth factor, 2(n-1)/n (0 for a single rank)."""
    return 2 * (world - 1) / world


def time_allreduce(nbytes: int, iters: int, warmup: int, device: torch.device) -> float:
    """Seconds of one in-place sum all-reduce of `nbytes` of float32, the slowest rank's."""
    x = torch.zeros(max(nbytes // 4, 1), dtype=torch.float32, device=device)
    for _ in range(warmup):
        dist.all_reduce(x)
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # the sync: the timed window starts with an idle GPU
    dist.barrier()
    started = time.perf_counter()
    for _ in range(iters):
        dist.all_reduce(x)
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # the sync: the window ends when the last one has
    seconds = torch.tensor([(time.perf_counter() - started) / iters], dtype=torch.float64)
    seconds = seconds.to(device)
    dist.all_reduce(seconds, op=dist.ReduceOp.MAX)
    return float(seconds.item())


def sums_correctly(world: int, device: torch.device) -> bool:
    """Each rank contributes rank + 1; every element must read n(n+1)/2."""
    x = torch.full((1024,), float(dist.get_rank() + 1), device=device)
    dist.all_reduce(x)
    return bool(torch.all(x == world * (world + 1) / 2).item())


def model_elements(run: RunConfig, classes: int) -> int:
    """Parameters + buffers of the run's model: what a checkpoint holds (with momentum)."""
    from larsbench.train.model import build_model

    model = build_model(run.model, classes)
    return sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-config", type=Path, required=True)
    parser.add_argument("--sizes", required=True, help="comma-separated message sizes in bytes")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--classes", type=int, default=0, help="count the model's elements")
    args = parser.parse_args(argv)
    run = RunConfig.from_dict(json.loads(args.run_config.read_text(encoding="utf-8")))
    d = setup_distributed(run)
    correct = sums_correctly(d.world, d.device)
    rows = []
    for nbytes in (int(s) for s in args.sizes.split(",")):
        seconds = time_allreduce(nbytes, args.iters, args.warmup, d.device)
        algbw = nbytes / seconds / 1e9
        rows.append(
            {
                "bytes": nbytes,
                "seconds": seconds,
                "algbw_gbps": algbw,
                "busbw_gbps": algbw * bus_factor(d.world),
            }
        )
    if d.is_main:
        out = {"world": d.world, "backend": run.backend, "correct": correct, "rows": rows}
        if args.classes:
            out["model_elements"] = model_elements(run, args.classes)
        args.out.write_text(json.dumps(out, indent=2), encoding="utf-8")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
