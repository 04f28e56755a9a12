"""The accuracy/speed frontier of a sweep's runs and the written recommendation drawn from it."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from larsbench.format import duration, finite, percent, rate
from larsbench.profile.schema import ReferenceConfig
from larsbench.results import RunResult
from larsbench.rundir import COMPLETED, DIVERGED, FAILED, QUEUED, RUNNING, STOPPED, UNREADABLE

# Accept a run this many top-1 points below the best for more speed.
DEFAULT_TOLERANCE = 0.5
# A faster run is worth an accuracy cost only if it is at least this much faster: throughput
# of the same run varies by a few percent, and smaller gains are not worth a change of recipe.
DEFAULT_MIN_SPEEDUP = 0.05
# LARC and SGD top-1 within this many points are "on par" (a few validation images).
DEFAULT_SAME_WITHIN = 0.05
# At most this many faster alternatives are named after the pick.
MAX_OPTIONS = 3


def speed_key(images_per_sec: float) -> float:
    """Throughput as the table shows it: whole img/s, or 0.1 img/s below 100."""
    if not finite(images_per_sec):
        return math.nan
    return round(images_per_sec, 0 if images_per_sec >= 100 else 1)


def measured(result: RunResult) -> bool:
    """Completed with a top-1: the runs a recommendation may weigh."""
    return result.status == COMPLETED and finite(result.top1)


def rankable(result: RunResult) -> bool:
    """Measured and with a training throughput: the runs the frontier is drawn from."""
    return measured(result) and finite(result.images_per_sec) and result.images_per_sec > 0


def pareto_frontier(results: Iterable[RunResult]) -> set[str]:
    """Completed runs that no other completed run beats on both top-1 and throughput.

    Values are compared as the table shows them (top-1 to 0.01 points, img/s to 1 img/s), so
    two runs that read the same are tied: a tie on one axis is decided by the other, and runs
    tied on both are all on the frontier. Runs without a finite top-1 or speed are left out.
    """
    points = [
        (r.run_id, round(r.top1, 2), speed_key(r.images_per_sec)) for r in results if rankable(r)
    ]
    return {
        run_id
        for run_id, top1, speed in points
        if not any(t >= top1 and s >= speed and (t > top1 or s > speed) for _, t, s in points)
    }


def recommend(
    results: list[RunResult],
    tolerance: float = DEFAULT_TOLERANCE,
    min_speedup: float = DEFAULT_MIN_SPEEDUP,
    same_within: float = DEFAULT_SAME_WITHIN,
    reference: ReferenceConfig | None = None,
) -> str:
    """A few sentences: which run to use, what more speed would cost, where LARC helps,
    and, with a reference table, whether the runs reproduce the published top-1.

    The rule (docs/summary.md): walk the frontier from its most accurate run towards faster
    ones and move on while the next run stays within `tolerance` points of the best top-1 and
    is at least `min_speedup` faster than the current pick.
    """
    timed = [
        r
        for r in results
        if r.mode == "throughput" and r.status == "completed" and finite(r.images_per_sec)
    ]
    if timed and not any(measured(r) for r in results):
        return throughput_advice(timed)
    done = [r for r in results if measured(r)]
    parts, _pick = _pick_sentences(done, tolerance, min_speedup)
    parts += _larc_sentences(done, same_within)
    parts.append(_time_sentence(done))
    parts.append(reference_sentence(results, reference))
    parts.append(_not_counted_sentence(results))
    return " ".join(p for p in parts if p)


def throughput_advice(timed: list[RunResult]) -> str:
    """For throughput-mode runs (no accuracy): the fastest, its projected run, LARC's cost."""
    fastest = max(timed, key=lambda r: r.images_per_sec)
    parts = [
        f"Throughput mode, no accuracy measured: {fastest.run_id} is the fastest at "
        f"{_speed(fastest.images_per_sec)} ({rate(fastest.images_per_sec_per_gpu)} per GPU)"
        + (
            f"; its {fastest.epochs}-epoch run would take about "
            f"{duration(fastest.projected_run_seconds)}."
            if finite(fastest.projected_run_seconds)
            else "."
        )
    ]
    for batch in sorted({r.batch_size for r in timed}):
        sgd = next((r for r in timed if r.batch_size == batch and r.optimizer == "sgd"), None)
        larcs = [r for r in timed if r.batch_size == batch and r.optimizer == "larc"]
        for larc in larcs:
            if sgd is None:
                continue
            # Runs told apart by another swept key (e.g. optimizer.fused) are named by run id.
            twins = sum(r.trust_coefficient == larc.trust_coefficient for r in larcs) > 1
            name = larc.run_id if twins else f"LARC tc {larc.trust_coefficient:g} at batch {batch}"
            baseline = sgd.run_id if twins else "plain SGD"
            share = (
                f" (optimizer {100 * larc.optimizer_share:.1f}% of the step vs "
                f"{100 * sgd.optimizer_share:.1f}%)"
                if finite(larc.optimizer_share) and finite(sgd.optimizer_share)
                else ""
            )
            parts.append(
                f"{name} runs at "
                f"{larc.images_per_sec / sgd.images_per_sec:.1%} of {baseline}'s speed{share}."
            )
    return " ".join(parts)


def _speed(value: float) -> str:
    return f"{rate(value)} img/s"


def _baseline(timed: list[RunResult]) -> RunResult:
    """The reference for speed-ups: the smallest-batch SGD run (the slowest one if several)."""
    pool = [r for r in timed if r.optimizer == "sgd"] or timed
    return min(pool, key=lambda r: (r.batch_size or math.inf, r.images_per_sec))


def _pick_sentences(
    done: list[RunResult], tolerance: float, min_speedup: float
) -> tuple[list[str], RunResult | None]:
    if not done:
        return ["Recommendation: none yet; no run has completed with a top-1."], None
    best = max(done, key=lambda r: (round(r.top1, 2), r.images_per_sec if rankable(r) else 0.0))
    if len(done) == 1:
        speed = f", {_speed(best.images_per_sec)}" if rankable(best) else ""
        text = (
            f"Recommendation: {best.run_id} is the only completed run so far "
            f"({percent(best.top1)} top-1{speed}); there is nothing to compare it with yet."
        )
        return [text], best
    ids = pareto_frontier(done)
    front = sorted((r for r in done if r.run_id in ids), key=lambda r: r.images_per_sec)
    if not front:
        text = (
            f"Recommendation: {best.run_id} has the best top-1 ({percent(best.top1)}); "
            "no completed run recorded its throughput, so speed cannot be weighed."
        )
        return [text], best
    floor = best.top1 - tolerance - 1e-9
    pick = front[0]
    for r in front[1:]:
        if r.top1 >= floor and r.images_per_sec >= pick.images_per_sec * (1 + min_speedup):
            pick = r
    baseline = _baseline([r for r in done if rankable(r)])
    loss = pick.top1 - best.top1
    if round(loss, 2) == 0:
        text = f"Recommendation: {pick.run_id} has the best top-1 ({percent(pick.top1)})"
    else:
        of_best = "" if best is baseline else f"{best.run_id}: {percent(best.top1)}, "
        kept = 100 * pick.top1 / best.top1 if best.top1 else math.nan
        text = (
            f"Recommendation: {pick.run_id} keeps {kept:.2f}% of the best top-1 "
            f"({of_best}{loss:+.2f} points)"
        )
    if pick is not baseline:
        text += f" at {pick.images_per_sec / baseline.images_per_sec:.2f}x the speed of "
        text += f"{baseline.run_id}"
    if pick is front[0]:
        text += (
            f"; no run within {tolerance:g} points of the best is {min_speedup:.0%} faster or more"
        )
    sentences = [text + "."]
    options = _faster_options(front, pick, min_speedup)
    if options:
        sentences.append(_options_sentence(options, pick, best, done))
    return sentences, pick


def _faster_options(front: list[RunResult], pick: RunResult, min_speedup: float) -> list[RunResult]:
    """Frontier runs past the pick, each at least `min_speedup` faster than the one before."""
    options: list[RunResult] = []
    current = pick
    for r in front[front.index(pick) + 1 :]:
        if r.images_per_sec >= current.images_per_sec * (1 + min_speedup):
            options.append(r)
            current = r
    return options[:MAX_OPTIONS]


def _options_sentence(
    options: list[RunResult], pick: RunResult, best: RunResult, done: list[RunResult]
) -> str:
    clauses = []
    named = {pick.run_id, *(r.run_id for r in options)}
    for i, r in enumerate(options):
        gain = r.images_per_sec / pick.images_per_sec - 1
        cost = best.top1 - r.top1
        if i == 0:
            clause = f"For {gain:.0%} more speed, {r.run_id} costs {cost:.2f} points of the best"
        else:
            clause = f"for {gain:.0%} more, {r.run_id} costs {cost:.2f}"
        sgd = _partner(r, done) if r.optimizer == "larc" else None
        if sgd is not None and sgd.run_id not in named:
            clause += f"; plain SGD at {r.batch_size} costs {best.top1 - sgd.top1:.2f}"
        clauses.append(clause)
    return "; ".join(clauses) + "."


def _pair_key(r: RunResult) -> tuple[Any, ...]:
    lr = round(r.lr, 9) if finite(r.lr) else None
    return (r.model, r.epochs, r.batch_size, lr)


def _partner(larc: RunResult, done: list[RunResult]) -> RunResult | None:
    """The completed SGD run with the same model, epochs, batch and lr (first in sweep order)."""
    key = _pair_key(larc)
    return next((r for r in done if r.optimizer == "sgd" and _pair_key(r) == key), None)


def _larc_sentences(done: list[RunResult], same_within: float) -> list[str]:
    """Per trust coefficient: LARC's top-1 minus plain SGD's at the same batch size."""
    by_tc: dict[Any, list[tuple[int, float]]] = {}
    unpaired: set[Any] = set()
    for r in done:
        if r.optimizer != "larc":
            continue
        sgd = _partner(r, done)
        if sgd is None:
            unpaired.add(r.trust_coefficient)
        else:
            by_tc.setdefault(r.trust_coefficient, []).append((r.batch_size, r.top1 - sgd.top1))
    sentences = []
    for tc in sorted(by_tc, key=lambda t: t if finite(t) else math.inf):
        pairs = sorted(by_tc[tc], key=lambda p: p[0] or 0)
        name = f"LARC with tc {tc:g}" if finite(tc) else "LARC"
        verdicts = {_verdict(d, same_within) for _, d in pairs}
        diffs = ", ".join(f"{d:+.2f} at {b}" for b, d in pairs)
        if len(pairs) == 1:
            b, d = pairs[0]
            verdict = _verdict(d, same_within)
            sentences.append(f"{name} {verdict} at batch {b} ({d:+.2f} points vs plain SGD).")
        elif len(verdicts) == 1:
            where = "here" if tc not in unpaired else "with an SGD run to compare"
            sentences.append(
                f"{name} {verdicts.pop()} at every batch size {where} "
                f"(top-1 vs plain SGD: {diffs})."
            )
        else:
            clauses = []
            for verdict in ("helps", "is on par", "hurts"):
                group = [(b, d) for b, d in pairs if _verdict(d, same_within) == verdict]
                if group:
                    batches = " and ".join(str(b) for b, _ in group)
                    values = ", ".join(f"{d:+.2f}" for _, d in group)
                    unit = "" if clauses else " points vs plain SGD"
                    clauses.append(f"{verdict} at {batches} ({values}{unit})")
            joined = ", ".join(clauses[:-1]) + " and " + clauses[-1]
            sentences.append(f"{name} {joined}.")
    return sentences


def _verdict(diff: float, same_within: float) -> str:
    if diff > same_within:
        return "helps"
    if diff < -same_within:
        return "hurts"
    return "is on par"


def _time_sentence(done: list[RunResult]) -> str:
    """The shortest training against the most accurate run's: a ratio of times and a
    difference of points, which read the same for a 2-second run as for a 3-day one."""
    timed = [r for r in done if finite(r.train_seconds) and r.train_seconds > 0]
    if len(timed) < 2:
        return ""
    best = max(timed, key=lambda r: round(r.top1, 2))
    quick = min(timed, key=lambda r: r.train_seconds)
    if quick is best:
        return f"{best.run_id} is also the quickest to train ({duration(best.train_seconds)})."
    return (
        f"Shortest training: {quick.run_id} in {quick.train_seconds / best.train_seconds:.0%} "
        f"of {best.run_id}'s time ({duration(quick.train_seconds)} vs "
        f"{duration(best.train_seconds)}) for {quick.top1 - best.top1:+.2f} points of top-1."
    )


def reference_sentence(results: list[RunResult], reference: ReferenceConfig | None) -> str:
    """Whether the measured top-1 is within the reference's tolerance of the published one."""
    if reference is None or not reference.top1:
        return ""
    tol = reference.tolerance
    pairs = [
        (r.run_id, r.top1 - reference.top1[r.run_id])
        for r in results
        if measured(r) and r.run_id in reference.top1
    ]
    unit = "point" if tol == 1 else "points"
    head = f"Against the reference ({reference.source}; tolerance {tol:g} {unit} of top-1)"
    if not pairs:
        return f"{head}: no run with a published top-1 has completed yet."
    within = [(i, d) for i, d in pairs if abs(d) <= tol + 1e-9]
    outside = [(i, d) for i, d in pairs if abs(d) > tol + 1e-9]
    if not outside:
        every = "the run" if len(pairs) == 1 else f"all {len(pairs)} runs"
        spread = ", ".join(f"{i} {d:+.2f}" for i, d in pairs)
        return f"{head}: {every} with a published top-1 reproduce it ({spread})."
    missed = ", ".join(f"{i} {d:+.2f}" for i, d in sorted(outside, key=lambda p: p[1]))
    return (
        f"{head}: {len(within)} of {len(pairs)} runs reproduce it; outside the tolerance: {missed}."
    )


def _not_counted_sentence(results: list[RunResult]) -> str:
    ended = [
        f"{r.run_id} ({r.status if r.status != COMPLETED else 'no top-1'})"
        for r in results
        if r.status in (FAILED, DIVERGED, STOPPED, UNREADABLE)
        or (r.status == COMPLETED and not measured(r))
    ]
    pending = [r for r in results if r.status in (RUNNING, QUEUED) or not r.status]
    parts = []
    if ended:
        parts.append(f"Not counted: {', '.join(ended)}.")
    if pending:
        running = sum(r.status == RUNNING for r in pending)
        counts = [f"{running} running"] if running else []
        if len(pending) - running:
            counts.append(f"{len(pending) - running} queued")
        parts.append(f"Still to come: {' and '.join(counts)}; this may change the verdict.")
    return " ".join(parts)
