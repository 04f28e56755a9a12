"""`larsbench run --json-progress`: one JSON object per line (docs/json-progress.md)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from larsbench.events import SourcedEvent
from larsbench.format import nan_to_none
from larsbench.headless import summary_despite_reference
from larsbench.plan.run import RunConfig
from larsbench.results import RunResult
from larsbench.rundir import RunPaths, SweepPaths
from larsbench.sweep.prepare import SweepPlan


class JsonProgressView:
    """--json-progress: one JSON object per line on `stream` (docs/json-progress.md)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._epochs: Any = None
        self._total: Any = None

    def emit(self, event: str, **fields: Any) -> None:
        line = {"event": event, "t": round(time.time(), 3)}
        line.update({k: nan_to_none(v) for k, v in fields.items()})
        self.stream.write(json.dumps(line, separators=(",", ":"), allow_nan=False) + "\n")
        self.stream.flush()

    def sweep_started(self, plan: SweepPlan, out: SweepPaths) -> None:
        self.emit("sweep_start", name=plan.profile.name, runs=len(plan.runs), out=str(out.root))

    def run_skipped(self, run: RunConfig, result: RunResult) -> None:
        self.emit("run_skipped", run_id=run.run_id, status=result.status, top1=result.top1)

    def run_started(self, run: RunConfig, paths: RunPaths, index: int, total: int) -> None:
        self._epochs = self._total = None
        larc = run.optimizer.name == "larc"
        self.emit(
            "run_start",
            run_id=run.run_id,
            index=index,
            total=total,
            world_size=run.world_size,
            batch_size=run.train.batch_size,
            lr=run.lr,
            optimizer=run.optimizer.name,
            trust_coefficient=run.optimizer.trust_coefficient if larc else None,
            dir=str(paths.root),
        )

    def run_events(self, run: RunConfig, events: list[SourcedEvent]) -> None:
        for sourced in events:
            e = sourced.event
            if sourced.source != "rank0":
                continue
            kind = e.get("kind")
            if kind == "run_start":
                self._epochs, self._total = e.get("epochs"), e.get("total_steps")
            elif kind == "step":
                self.emit(
                    "progress",
                    run_id=run.run_id,
                    epoch=e.get("epoch"),
                    epochs=self._epochs,
                    step=e.get("step"),
                    total_steps=self._total,
                    loss=e.get("loss"),
                    lr=e.get("lr"),
                    images_per_sec=e.get("images_per_sec"),
                    data_wait_fraction=e.get("data_wait_fraction"),
                )
            elif kind == "eval":
                self.emit(
                    "eval",
                    run_id=run.run_id,
                    epoch=e.get("epoch"),
                    top1=e.get("top1"),
                    top5=e.get("top5"),
                )

    def run_finished(self, run: RunConfig, result: RunResult) -> None:
        self.emit(
            "run_end",
            run_id=run.run_id,
            status=result.status,
            reason=result.reason,
            top1=result.top1,
            best_top1=result.best_top1,
            images_per_sec=result.images_per_sec,
            train_seconds=result.train_seconds,
        )

    def sweep_finished(self, results: list[RunResult], out: SweepPaths) -> None:
        summary = summary_despite_reference(
            out, lambda message: print(message, file=sys.stderr, flush=True)
        )
        self.emit(
            "sweep_end",
            summary=str(summary.md),
            completed=sum(r.status == "completed" for r in results),
            runs=len(results),
            frontier=summary.frontier,
            recommendation=summary.recommendation,
        )
