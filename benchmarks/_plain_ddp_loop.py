"""The baseline of benchmarks/train_overhead.py: the plain DDP training loop every tutorial shows.

    python -m torch.distributed.run --standalone --nproc-per-node 2 \
        benchmarks/_plain_ddp_loop.py --config RUN_CONFIG.json --out RESULT.json [--no-item]

It trains exactly what larsbench's worker trains for the same resolved RunConfig (the model from
`larsbench.train.model.build_model`, the data from `larsbench.train.loaders.build_data`, the same
global batch, sampler seed, threads, SGD hyper-parameters) with nothing else: DistributedSampler,
DataLoader, DDP model, SGD, forward, loss, zero_grad, backward, step, and `loss.item()` every step
as tutorials print it (`--no-item` leaves it out). No lr schedule, no events, no checkpoints, no
evaluation. Rank 0 writes the wall time of each training epoch, measured as the worker measures
it (from before the loader's iterator is made to after the last step), to `--out`, and the mean
step time of every `train.log_every` steps (one perf_counter read per step: a diagnostic).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler

from larsbench.plan.run import RunConfig
from larsbench.train.loaders import build_data
from larsbench.train.model import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="a RunConfig as JSON")
    parser.add_argument("--out", type=Path, required=True, help="rank 0 writes its timings here")
    parser.add_argument("--no-item", action="store_true", help="no loss.item() per step")
    args = parser.parse_args()
    run = RunConfig.from_dict(json.loads(args.config.read_text()))

    torch.set_num_threads(run.threads_per_rank)
    dist.init_process_group(backend="gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(run.train.seed)

    data = build_data(run)
    sampler = DistributedSampler(data.train, world, rank, shuffle=True, seed=run.train.seed)
    loader = DataLoader(
        data.train,
        batch_size=run.train.batch_size // world,
        sampler=sampler,
        num_workers=run.data.workers,
        drop_last=True,
        persistent_workers=run.data.workers > 0,
    )
    model = DDP(build_model(run.model, data.num_classes))
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=run.lr,
        momentum=run.train.momentum,
        nesterov=run.train.nesterov,
        weight_decay=run.train.weight_decay,
    )
    criterion = nn.CrossEntropyLoss(label_smoothing=run.train.label_smoothing)

    epochs, intervals = [], []
    every = run.train.log_every
    for epoch in range(1, run.train.epochs + 1):
        sampler.set_epoch(epoch)  # larsbench's epochs count from 1: the same shuffles
        started = time.perf_counter()
        steps, total, mark = 0, 0.0, started
        for images, labels in loader:
            loss = criterion(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if not args.no_item:
                total += loss.item()  # on a GPU, a sync every step
            steps += 1
            if steps % every == 0:  # not in the tutorials: mean step time per `every` steps
                now = time.perf_counter()
                if steps > every:  # as for larsbench, not the interval that starts the epoch
                    intervals.append((now - mark) / every)
                mark = now
        seconds = time.perf_counter() - started
        seen = steps * (run.train.batch_size // world) * world
        # `end` in time.time(), as larsbench stamps its events: the driver's CPU sampler aligns.
        epochs.append({"epoch": epoch, "images": seen, "seconds": seconds, "end": time.time()})
        if rank == 0:
            shown = "" if args.no_item else f", loss {total / max(steps, 1):.4f}"
            print(f"epoch {epoch}: {seen / seconds:.1f} img/s{shown}", flush=True)

    if rank == 0:
        seen = sum(e["images"] for e in epochs)
        seconds = sum(e["seconds"] for e in epochs)
        result = {
            "epochs": epochs,
            "images_per_sec": seen / seconds,
            "interval_step_seconds": intervals,
        }
        args.out.write_text(json.dumps(result, indent=2))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
