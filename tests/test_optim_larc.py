"""LARC: equivalence with the reference formula, ecosystem integration, no host syncs, stats."""

from __future__ import annotations

import contextlib
import copy
import io
import math
import warnings
from collections.abc import Callable, Iterator

import pytest
import torch
from torch import nn

from larsbench.optim import LARC, TrustRatioStats, parameter_names
from larsbench.optim.kernels import l2_norms

# The synthetic problem: two param groups with different lr/wd. Gradients are generated per
# step independently of the weights, so a float32 run and a float64 reference see the very
# same gradients and differ only by the arithmetic's rounding.
SHAPES = [(8, 6), (6,), (5, 4), (4, 3, 3), (7,), (3, 3)]
GROUPS = [
    {"indices": [0, 1, 2], "lr": 0.1, "weight_decay": 1e-4},
    {"indices": [3, 4, 5], "lr": 0.5, "weight_decay": 5e-3},
]
ZERO_INIT = 1  # a BatchNorm-like weight initialised to zero: ||w|| = 0 on the first step
NO_GRAD = 4  # never gets a gradient
SOMETIMES_ZERO_GRAD = 5  # ||g|| = 0 on every third step
EPS = 1e-8


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """The tensors here are tiny: one thread avoids OpenMP overhead on a busy 2-core box."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def initial_values() -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    values = [torch.randn(shape, generator=gen) for shape in SHAPES]
    values[ZERO_INIT].zero_()
    return values


def gradients(step: int) -> list[torch.Tensor | None]:
    """Step `step`'s gradients: magnitudes spread over 1e-2..1 so that some clip, some not."""
    gen = torch.Generator().manual_seed(1000 + step)
    grads: list[torch.Tensor | None] = []
    for i, shape in enumerate(SHAPES):
        grads.append(torch.randn(shape, generator=gen) * 10.0 ** -(i % 3))
    grads[NO_GRAD] = None
    if step % 3 == 0:
        grads[SOMETIMES_ZERO_GRAD] = torch.zeros(SHAPES[SOMETIMES_ZERO_GRAD])
    return grads


def make_params() -> list[nn.Parameter]:
    return [nn.Parameter(v.clone()) for v in initial_values()]


def make_sgd(params: list[nn.Parameter], **sgd_kwargs) -> torch.optim.SGD:
    groups = [
        {
            "params": [params[i] for i in g["indices"]],
            "lr": g["lr"],
            "weight_decay": g["weight_decay"],
        }
        for g in GROUPS
    ]
    return torch.optim.SGD(groups, lr=1.0, **sgd_kwargs)


# LARC's update modes: eager multi-tensor ops, the compiled decay-and-scale pass, and the
# factor folded into SGD's compiled update. The compiled ones compile per set of shapes and
# momentum/clip options (seconds each on this CPU; Inductor's disk cache keeps them).
MODES = ["eager", "fused", "fold"]


def make_larc(optimizer: torch.optim.Optimizer, mode: str, *args, **kwargs) -> LARC:
    """LARC in update mode `mode` (one of MODES)."""
    options = {"eager": {}, "fused": {"fused": True}, "fold": {"fold_into_sgd": True}}[mode]
    return LARC(optimizer, *args, **kwargs, **options)


def set_grads(params: list[nn.Parameter], step: int) -> None:
    for p, g in zip(params, gradients(step), strict=True):
        p.grad = None if g is None else g.clone()


def run(
    optimizer: torch.optim.Optimizer,
    params: list[nn.Parameter],
    steps: range,
    before_step: Callable[[int], None] | None = None,
) -> None:
    for t in steps:
        set_grads(params, t)
        if before_step is not None:
            before_step(t)
        optimizer.step()


def reference_larc(
    steps: int,
    *,
    trust_coefficient: float,
    clip: bool,
    momentum: float,
    nesterov: bool,
    lr_at: Callable[[int, int], float] | None = None,
) -> list[torch.Tensor]:
    """LARC + SGD written from the formula, one tensor at a time, in float64."""
    ws = [v.double() for v in initial_values()]
    bufs: list[torch.Tensor | None] = [None] * len(ws)
    for t in range(steps):
        grads = gradients(t)
        for gi, group in enumerate(GROUPS):
            lr = group["lr"] if lr_at is None else lr_at(gi, t)
            wd = group["weight_decay"]
            for i in group["indices"]:
                if grads[i] is None:
                    continue
                w, g = ws[i], grads[i].double()
                w_norm, g_norm = w.norm().item(), g.norm().item()
                if w_norm != 0 and g_norm != 0:
                    local_lr = trust_coefficient * w_norm / (g_norm + wd * w_norm + EPS)
                    factor = min(local_lr / lr, 1.0) if clip else local_lr
                    g = (g + wd * w) * factor
                if momentum != 0:
                    bufs[i] = g.clone() if bufs[i] is None else momentum * bufs[i] + g
                    g = g + momentum * bufs[i] if nesterov else bufs[i]
                ws[i] = w - lr * g
    return ws


def apex_larc_step(optimizer: torch.optim.Optimizer, trust_coefficient: float, clip: bool) -> None:
    """A transcription of apex/parallel/LARC.py's step (float32, per-tensor Python branches)."""
    with torch.no_grad():
        weight_decays = []
        for group in optimizer.param_groups:
            weight_decay = group["weight_decay"]
            weight_decays.append(weight_decay)
            group["weight_decay"] = 0
            for p in group["params"]:
                if p.grad is None:
                    continue
                param_norm = torch.norm(p.data)
                grad_norm = torch.norm(p.grad.data)
                if param_norm != 0 and grad_norm != 0:
                    adaptive_lr = (
                        trust_coefficient
                        * param_norm
                        / (grad_norm + param_norm * weight_decay + EPS)
                    )
                    if clip:
                        adaptive_lr = min(adaptive_lr / group["lr"], 1)
                    p.grad.data += weight_decay * p.data
                    p.grad.data *= adaptive_lr
    optimizer.step()
    for i, group in enumerate(optimizer.param_groups):
        group["weight_decay"] = weight_decays[i]


def max_relative_error(actual: list[nn.Parameter], expected: list[torch.Tensor]) -> float:
    """Largest per-tensor ||actual - expected|| / ||expected||."""
    worst = 0.0
    for a, e in zip(actual, expected, strict=True):
        diff = (a.detach().double() - e.double()).norm().item()
        worst = max(worst, diff / max(e.double().norm().item(), 1e-30))
    return worst


# Tolerance against the float64 reference. Each float32 op rounds with a relative error of at
# most 2**-24 (6e-8); a parameter takes ~10 such ops per step and keeps its own rounding from
# step to step, so after 25 steps the error is a random walk of a few 1e-7 (measured: at most
# 2.9e-7 over the 12 cases below). 1e-6 is that with margin; a wrong factor, decay or
# zero-norm rule shows up as errors of 1e-3 and more.
REL_TOL = 1e-6
STEPS = 25

MOMENTA = [
    pytest.param(0.0, False, id="plain"),
    pytest.param(0.9, False, id="momentum"),
    pytest.param(0.9, True, id="nesterov"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("momentum,nesterov", MOMENTA)
@pytest.mark.parametrize("clip", [True, False], ids=["clip", "scale"])
@pytest.mark.parametrize("trust_coefficient", [1e-3, 2e-2])
def test_matches_float64_reference(
    trust_coefficient: float, clip: bool, momentum: float, nesterov: bool, mode: str
) -> None:
    params = make_params()
    sgd = make_sgd(params, momentum=momentum, nesterov=nesterov)
    larc = make_larc(sgd, mode, trust_coefficient, clip)
    run(larc, params, range(STEPS))
    expected = reference_larc(
        STEPS, trust_coefficient=trust_coefficient, clip=clip, momentum=momentum, nesterov=nesterov
    )
    assert max_relative_error(params, expected) < REL_TOL
    assert torch.equal(params[NO_GRAD].detach(), initial_values()[NO_GRAD])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("clip", [True, False], ids=["clip", "scale"])
def test_matches_apex_transcription_in_float32(clip: bool, mode: str) -> None:
    params, apex_params = make_params(), make_params()
    larc = make_larc(make_sgd(params, momentum=0.9, nesterov=True), mode, 2e-2, clip)
    apex_sgd = make_sgd(apex_params, momentum=0.9, nesterov=True)
    run(larc, params, range(STEPS))
    for t in range(STEPS):
        set_grads(apex_params, t)
        apex_larc_step(apex_sgd, 2e-2, clip)
    # Same float32 formula in the same order. The norms differ by a few ulps (larsbench takes
    # sqrt(BLAS dot) on the CPU, apex torch.norm, the compiled modes their own loops: other
    # summation orders), and so do fused multiply-adds; measured at most 1.0e-7 after 25
    # steps in eager mode, far below any algorithmic change (1e-3).
    assert max_relative_error(params, [p.detach() for p in apex_params]) < 5e-7


def test_l2_norms_match_float64_norms() -> None:
    gen = torch.Generator().manual_seed(3)
    tensors = [
        torch.randn(1 << 20, generator=gen),  # long enough for float32 accumulation to matter
        torch.zeros(5),
        torch.randn(6, 4, generator=gen).t(),  # not contiguous
        torch.randn(3, 3, generator=gen).double(),
        torch.randn(300, generator=gen).half(),  # no BLAS dot: the foreach kernel
    ]
    norms = l2_norms(tensors)
    expected = torch.stack([t.double().norm() for t in tensors])
    assert norms.shape == (len(tensors),)
    assert norms[1] == 0
    relative = (norms.double() - expected).abs() / expected.clamp_min(1e-30)
    # float32 sums of a million squares: no worse than torch's own norm (which apex used)
    torch_norm = torch.linalg.vector_norm(tensors[0]).double()
    assert relative[0] <= (torch_norm - expected[0]).abs() / expected[0]
    assert relative[0] < 1e-5
    assert relative[[2, 3]].max() < 1e-6
    assert relative[4] < 1e-3  # float16's own rounding
    assert torch.equal(l2_norms(tensors[4:]), torch.stack(torch._foreach_norm(tensors[4:])))


# The fused update compiles with torch.compile: tens of seconds on a cold cache, so the fused
# path is checked on the most demanding configuration only (momentum, nesterov, both modes
# share the compiled graph: the mode only changes the factor computed before it).
def test_fused_update_matches_float64_reference_and_eager() -> None:
    params, eager_params = make_params(), make_params()
    fused = LARC(make_sgd(params, momentum=0.9, nesterov=True), 2e-2, fused=True)
    eager = LARC(make_sgd(eager_params, momentum=0.9, nesterov=True), 2e-2)
    run(fused, params, range(STEPS))
    run(eager, eager_params, range(STEPS))
    expected = reference_larc(STEPS, trust_coefficient=2e-2, clip=True, momentum=0.9, nesterov=True)
    assert max_relative_error(params, expected) < REL_TOL
    # one fused pass rounds (g + d*w)*f once where eager rounds twice: a few ulps apart
    assert max_relative_error(params, [p.detach() for p in eager_params]) < 1e-6
    assert "fused=True" in repr(fused)


@pytest.mark.parametrize("mode", ["fused", "fold"])
def test_fused_update_is_one_graph_for_many_param_groups(mode: str) -> None:
    """Ten groups compile once: one graph per group would pass torch._dynamo's recompile
    limit of 8 (and fullgraph=True would raise there)."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    gen = torch.Generator().manual_seed(5)
    values = [torch.randn(4, 3, generator=gen) for _ in range(10)]
    made = []
    for larc_mode in (mode, "eager"):
        params = [nn.Parameter(v.clone()) for v in values]
        groups = [
            {"params": [p], "lr": 0.1 * (i + 1), "weight_decay": 1e-3} for i, p in enumerate(params)
        ]
        larc = make_larc(torch.optim.SGD(groups, lr=1.0, momentum=0.9), larc_mode, 2e-2)
        for t in range(3):
            step_gen = torch.Generator().manual_seed(t)
            for p in params:
                p.grad = torch.randn(p.shape, generator=step_gen)
            larc.step()
        made.append(params)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
    assert max_relative_error(made[0], [p.detach() for p in made[1]]) < 1e-6


@pytest.mark.parametrize("mode", ["fused", "fold"])
def test_compile_fused_update_compiles_ahead_and_changes_nothing(mode: str) -> None:
    torch._dynamo.reset()
    counters = torch._dynamo.utils.counters
    counters.clear()
    data, labels = _toy_classification()
    model = _mlp()
    before = copy.deepcopy(model.state_dict())
    sgd = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-4)
    larc = make_larc(sgd, mode, trust_coefficient=2e-2)
    larc.compile_fused_update()
    assert counters["stats"]["unique_graphs"] == 1
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert larc.step_count == 0 and not larc.state
    for _ in range(3):
        larc.zero_grad()
        nn.functional.cross_entropy(model(data), labels).backward()
        larc.step()
    assert counters["stats"]["unique_graphs"] == 1  # training reused the graph compiled ahead
    with pytest.raises(RuntimeError, match="before the first backward"):
        larc.compile_fused_update()


def test_fold_keeps_sgd_state_interchangeable_and_gradients_unmodified() -> None:
    """fold_into_sgd's momentum buffers are SGD's own: a state dict saved from a folded run
    continues in an eager one (and back) as if one mode had run throughout."""
    folded_params, eager_params = make_params(), make_params()
    folded = make_larc(make_sgd(folded_params, momentum=0.9, nesterov=True), "fold", 2e-2)
    eager = make_larc(make_sgd(eager_params, momentum=0.9, nesterov=True), "eager", 2e-2)
    set_grads(folded_params, 0)
    raw = [None if p.grad is None else p.grad.clone() for p in folded_params]
    folded.step()
    assert all(
        (g is None and p.grad is None) or torch.equal(p.grad, g)
        for p, g in zip(folded_params, raw, strict=True)
    )  # fold writes w and the buffer, never g
    run(folded, folded_params, range(1, 8))
    run(eager, eager_params, range(8))
    for p, q in zip(folded_params, eager_params, strict=True):
        if p.grad is not None:
            torch.testing.assert_close(
                folded.state[p]["momentum_buffer"], eager.state[q]["momentum_buffer"]
            )
    assert folded.state_dict()["state"].keys() == eager.state_dict()["state"].keys()

    resumed_params = [nn.Parameter(p.detach().clone()) for p in folded_params]
    resumed = make_larc(make_sgd(resumed_params, momentum=0.9, nesterov=True), "eager", 2e-2)
    resumed.load_state_dict(copy.deepcopy(folded.state_dict()))  # load_state_dict aliases
    run(resumed, resumed_params, range(8, STEPS))
    run(folded, folded_params, range(8, STEPS))
    expected = reference_larc(STEPS, trust_coefficient=2e-2, clip=True, momentum=0.9, nesterov=True)
    assert max_relative_error(resumed_params, expected) < REL_TOL
    assert max_relative_error(folded_params, expected) < REL_TOL
    assert resumed.step_count == folded.step_count == STEPS


def test_fold_needs_a_plain_sgd_and_excludes_fused() -> None:
    params = make_params()
    with pytest.raises(TypeError, match="wraps an SGD, got AdamW"):
        LARC(torch.optim.AdamW(params), fold_into_sgd=True)
    with pytest.raises(ValueError, match="exclude each other"):
        LARC(make_sgd(params), fused=True, fold_into_sgd=True)
    larc = LARC(make_sgd(params, maximize=True), fold_into_sgd=True)
    set_grads(params, 0)
    with pytest.raises(ValueError, match="maximize"):
        larc.step()
    assert "fold_into_sgd=True" in repr(larc)


def test_compile_fused_update_without_fused_does_nothing() -> None:
    params = make_params()
    larc = LARC(make_sgd(params), 2e-2)
    larc.compile_fused_update()
    assert all(p.grad is None for p in params)


@pytest.mark.parametrize("mode", ["fused", "fold"])
def test_fused_step_does_not_sync_once_compiled(mode: str) -> None:
    params = make_params()
    sgd = make_sgd(params, momentum=0.9, nesterov=True)
    larc = make_larc(sgd, mode, 2e-2, stats_every=1)
    run(larc, params, range(1))  # compiles (or loads the graph the test above compiled)
    for t in range(1, 4):
        set_grads(params, t)
        with host_syncs_forbidden():
            larc.step()
    assert len(larc.latest_stats) == len(SHAPES) - 1


def test_reference_problem_exercises_clipping_both_ways() -> None:
    """Guard for the equivalence tests: with tc 2e-2 some tensors clip and some do not."""
    params = make_params()
    larc = LARC(make_sgd(params, momentum=0.9), 2e-2, stats_every=1)
    seen = set()
    for t in range(6):
        run(larc, params, range(t, t + 1))
        host = larc.latest_stats.to_host()
        seen.update(c for c, a in zip(host["clipped"], host["adapted"], strict=True) if a)
    assert seen == {True, False}


@pytest.mark.parametrize("mode", MODES)
def test_zero_norm_tensor_is_untouched_and_not_decayed(mode: str) -> None:
    params = make_params()
    larc = make_larc(make_sgd(params), mode, 2e-2)
    set_grads(params, 0)
    grads = [None if p.grad is None else p.grad.clone() for p in params]
    larc.step()
    # step 0: params[ZERO_INIT] has ||w|| = 0 and params[SOMETIMES_ZERO_GRAD] has ||g|| = 0
    assert torch.equal(params[ZERO_INIT].grad, grads[ZERO_INIT])
    assert torch.equal(params[SOMETIMES_ZERO_GRAD].grad, grads[SOMETIMES_ZERO_GRAD])
    assert torch.equal(params[SOMETIMES_ZERO_GRAD].detach(), initial_values()[SOMETIMES_ZERO_GRAD])
    lr = GROUPS[0]["lr"]
    assert torch.equal(params[ZERO_INIT].detach(), -lr * grads[ZERO_INIT])


def test_weight_decay_is_taken_over_during_the_inner_step_only() -> None:
    params = make_params()
    sgd = make_sgd(params, momentum=0.9)
    larc = LARC(sgd)
    seen: list[list[float]] = []
    sgd.register_step_pre_hook(
        lambda opt, args, kwargs: seen.append([g["weight_decay"] for g in opt.param_groups])
    )
    expected = [g["weight_decay"] for g in GROUPS]
    assert [g["weight_decay"] for g in larc.param_groups] == expected
    run(larc, params, range(2))
    assert seen == [[0.0, 0.0], [0.0, 0.0]]
    assert [g["weight_decay"] for g in larc.param_groups] == expected


# ----------------------------------------------------------------------------- the ecosystem


def test_is_an_optimizer_sharing_the_inner_objects() -> None:
    params = make_params()
    sgd = make_sgd(params, momentum=0.9)
    larc = LARC(sgd)
    assert isinstance(larc, torch.optim.Optimizer)
    assert larc.param_groups is sgd.param_groups
    assert larc.state is sgd.state
    assert larc.defaults is sgd.defaults
    run(larc, params, range(1))
    sgd.load_state_dict(sgd.state_dict())  # replaces sgd.param_groups with a new list
    assert larc.param_groups is sgd.param_groups
    larc.zero_grad()
    assert all(p.grad is None for p in params)
    extra = nn.Parameter(torch.ones(3))
    larc.add_param_group({"params": [extra], "lr": 0.01})
    assert sgd.param_groups[-1]["params"] == [extra]
    assert "LARC(trust_coefficient=0.02" in repr(larc)


def test_step_hooks_and_closure() -> None:
    params = make_params()
    larc = LARC(make_sgd(params))
    calls: list[str] = []
    larc.register_step_pre_hook(lambda opt, args, kwargs: calls.append("pre"))
    larc.register_step_post_hook(lambda opt, args, kwargs: calls.append("post"))
    set_grads(params, 0)
    assert larc.step(lambda: 3.5) == 3.5
    assert calls == ["pre", "post"]
    assert larc.step_count == 1


@pytest.mark.parametrize("mode", MODES)
def test_lr_scheduler_drives_the_inner_lr(mode: str) -> None:
    params = make_params()
    larc = make_larc(make_sgd(params, momentum=0.9), mode, 2e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(larc, step_size=4, gamma=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # also: no "scheduler.step() before optimizer.step()"
        for t in range(12):
            run(larc, params, range(t, t + 1))
            scheduler.step()
    assert larc.param_groups[0]["initial_lr"] == GROUPS[0]["lr"]
    assert math.isclose(larc.param_groups[1]["lr"], GROUPS[1]["lr"] * 0.1**3)

    def lr_at(group: int, step: int) -> float:
        return GROUPS[group]["lr"] * 0.1 ** (step // 4)

    expected = reference_larc(
        12, trust_coefficient=2e-2, clip=True, momentum=0.9, nesterov=False, lr_at=lr_at
    )
    assert max_relative_error(params, expected) < REL_TOL


@pytest.mark.parametrize("mode", MODES)
def test_lambda_lr_with_zero_warmup_start(mode: str) -> None:
    params = make_params()
    larc = make_larc(make_sgd(params, momentum=0.9), mode)
    scheduler = torch.optim.lr_scheduler.LambdaLR(larc, lambda s: min(1.0, s / 3))
    assert larc.param_groups[0]["lr"] == 0.0
    run(larc, params, range(1))  # lr 0: local_lr / lr is inf, the factor clips to 1
    assert torch.equal(params[0].detach(), initial_values()[0])
    scheduler.step()
    run(larc, params, range(1, 2))
    assert all(torch.isfinite(p).all() for p in params)


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))


def test_grad_scaler_unscales_before_larc_and_skips_inf_steps() -> None:
    data = torch.randn(32, 5, generator=torch.Generator().manual_seed(3))
    target = torch.randint(0, 3, (32,), generator=torch.Generator().manual_seed(4))
    poisoned_step = 3

    def train(use_scaler: bool) -> tuple[nn.Module, LARC, torch.amp.GradScaler]:
        model = _mlp()
        sgd = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-3)
        larc = LARC(sgd, stats_every=1)
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, enabled=use_scaler)
        for t in range(6):
            loss = nn.functional.cross_entropy(model(data), target)
            scaler.scale(loss).backward()
            if t == poisoned_step:
                model[0].weight.grad[0, 0] = float("inf")
                if not use_scaler:
                    larc.zero_grad()
                    continue  # what GradScaler does: skip the step
            scaler.unscale_(larc)
            scaler.step(larc)
            scaler.update()
            larc.zero_grad()
        return model, larc, scaler

    scaled_model, scaled, scaler = train(True)
    plain_model, plain, _ = train(False)
    assert scaler.get_scale() == 2.0**9  # halved once, by the inf step
    assert scaled.step_count == plain.step_count == 5
    # Scaling by a power of two is exact, so unscaled gradients are bit-identical; LARC saw
    # unscaled gradients (its grad norms match the unscaled run's) and the runs agree.
    torch.testing.assert_close(scaled.latest_stats.grad_norm, plain.latest_stats.grad_norm)
    for a, b in zip(scaled_model.parameters(), plain_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=0)


def test_state_dict_round_trip_continues_identically() -> None:
    params = make_params()
    larc = LARC(make_sgd(params, momentum=0.9, nesterov=True), stats_every=2)
    run(larc, params, range(5))
    buffer = io.BytesIO()
    torch.save({"params": [p.detach() for p in params], "optim": larc.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer)
    assert saved["optim"]["larc"] == {"step": 5}
    assert all("momentum_buffer" in s for s in saved["optim"]["state"].values())

    resumed_params = [nn.Parameter(v.clone()) for v in saved["params"]]
    resumed = LARC(make_sgd(resumed_params, momentum=0.9, nesterov=True), stats_every=2)
    resumed.load_state_dict(saved["optim"])
    assert resumed.step_count == 5
    run(larc, params, range(5, 10))
    run(resumed, resumed_params, range(5, 10))
    for a, b in zip(params, resumed_params, strict=True):
        assert torch.equal(a, b)
    assert resumed.latest_stats.step == larc.latest_stats.step == 10


def test_load_plain_sgd_state_dict() -> None:
    params = make_params()
    sgd = make_sgd(params, momentum=0.9)
    run(sgd, params, range(2))
    larc = LARC(make_sgd(make_params(), momentum=0.9))
    larc.load_state_dict(sgd.state_dict())
    assert larc.step_count == 0
    assert len(larc.state) == len(sgd.state)


def test_deepcopy_keeps_working_after_scheduler_patching() -> None:
    params = make_params()
    larc = LARC(make_sgd(params, momentum=0.9))
    torch.optim.lr_scheduler.StepLR(larc, step_size=1)
    clone = copy.deepcopy(larc)
    assert clone.param_groups is clone.optimizer.param_groups
    set_grads([p for g in clone.param_groups for p in g["params"]], 0)
    clone.step()
    assert clone.step_count == 1


# ----------------------------------------------------------------------------- no host sync


@contextlib.contextmanager
def host_syncs_forbidden() -> Iterator[None]:
    """Make every Python-level way of reading a tensor's value to the host raise."""

    def forbidden(self, *args, **kwargs):
        raise AssertionError("host-device sync inside step()")

    names = ["__bool__", "item", "tolist", "__float__", "__int__", "__index__", "numpy"]
    saved = {name: torch.Tensor.__dict__.get(name) for name in names}
    for name in names:
        setattr(torch.Tensor, name, forbidden)
    try:
        yield
    finally:
        for name, method in saved.items():
            if method is None:
                delattr(torch.Tensor, name)
            else:
                setattr(torch.Tensor, name, method)


def test_the_guard_catches_syncs() -> None:
    with host_syncs_forbidden(), pytest.raises(AssertionError, match="sync"):
        bool(torch.ones(()))
    assert bool(torch.ones(()))


@pytest.mark.parametrize("clip", [True, False], ids=["clip", "scale"])
def test_step_does_not_sync(clip: bool) -> None:
    params = make_params()
    sgd = make_sgd(params, momentum=0.9, nesterov=True)
    larc = LARC(sgd, clip=clip, exclude=lambda p: p is params[2], stats_every=2)
    for t in range(4):  # steps 2 and 4 record statistics; step 1 creates momentum buffers
        set_grads(params, t)
        with host_syncs_forbidden():
            larc.step()
    stats = larc.latest_stats
    with host_syncs_forbidden(), pytest.raises(AssertionError, match="sync"):
        stats.to_host()  # the one documented place that does sync
    assert len(stats.to_host()["factor"]) == len(stats)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("mode", MODES)
def test_step_does_not_sync_on_cuda(mode: str) -> None:
    params = [nn.Parameter(v.cuda()) for v in initial_values()]
    larc = make_larc(
        make_sgd(params, momentum=0.9), mode, exclude_bias_and_norm=True, stats_every=1
    )
    compiles = mode != "eager"
    for t in range(3):
        for p, g in zip(params, gradients(t), strict=True):
            p.grad = None if g is None else g.cuda()
        torch.cuda.synchronize()
        if compiles and t == 0:
            larc.step()  # compiles (Triton): compiling may sync, stepping must not
            continue
        torch.cuda.set_sync_debug_mode("error")
        try:
            larc.step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert len(larc.latest_stats.to_host()["factor"]) == len(SHAPES) - 1


# ----------------------------------------------------------------------------- exclusion


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("nesterov", [False, True])
def test_exclude_bias_and_norm_gives_plain_sgd_treatment(nesterov: bool, mode: str) -> None:
    """1-D tensors follow plain SGD exactly (fold: to float32 rounding, its compiled pass
    contracts multiply-adds); the others follow LARC without exclusion."""
    excluded_params, plain_sgd_params, larc_params = make_params(), make_params(), make_params()
    excluded = make_larc(
        make_sgd(excluded_params, momentum=0.9, nesterov=nesterov),
        mode,
        2e-2,
        exclude_bias_and_norm=True,
    )
    plain_sgd = make_sgd(plain_sgd_params, momentum=0.9, nesterov=nesterov)
    larc = make_larc(make_sgd(larc_params, momentum=0.9, nesterov=nesterov), mode, 2e-2)
    for opt, params in [
        (excluded, excluded_params),
        (plain_sgd, plain_sgd_params),
        (larc, larc_params),
    ]:
        run(opt, params, range(10))
    for i, p in enumerate(excluded_params):
        twin = plain_sgd_params[i] if p.ndim <= 1 else larc_params[i]
        if mode == "fold" and p.ndim <= 1:
            torch.testing.assert_close(p, twin, rtol=1e-6, atol=1e-7)
        else:
            assert torch.equal(p, twin), i
    assert not torch.equal(excluded_params[1], larc_params[1])  # exclusion did change something


def test_group_of_only_excluded_tensors_keeps_its_weight_decay_in_the_inner_step() -> None:
    model = _mlp()
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    sgd = torch.optim.SGD(
        [{"params": decay, "weight_decay": 1e-4}, {"params": no_decay, "weight_decay": 3e-3}],
        lr=0.1,
        momentum=0.9,
    )
    seen: list[list[float]] = []
    sgd.register_step_pre_hook(
        lambda opt, args, kwargs: seen.append([g["weight_decay"] for g in opt.param_groups])
    )
    larc = LARC(sgd, exclude_bias_and_norm=True)
    model(torch.randn(8, 5)).sum().backward()
    larc.step()
    assert seen == [[0.0, 3e-3]]


def test_exclude_predicate_by_name() -> None:
    model = _mlp()
    names = {id(p): n for n, p in model.named_parameters()}
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    larc = LARC(sgd, exclude=lambda p: names[id(p)].startswith("1."), stats_every=1)
    model(torch.randn(8, 5)).sum().backward()
    larc.step()
    host = larc.latest_stats.to_host()
    layer_names = parameter_names(model, larc)
    adapted = {layer_names[i]: a for i, a in zip(host["param_index"], host["adapted"], strict=True)}
    assert adapted == {
        "0.weight": True,
        "0.bias": True,
        "1.weight": False,
        "1.bias": False,
        "3.weight": True,
        "3.bias": True,
    }


# ----------------------------------------------------------------------------- statistics


def test_stats_every_records_on_multiples_of_the_step_count() -> None:
    params = make_params()
    larc = LARC(make_sgd(params), stats_every=3)
    recorded = []
    for t in range(7):
        run(larc, params, range(t, t + 1))
        stats = larc.latest_stats
        recorded.append(None if stats is None else stats.step)
    assert recorded == [None, None, 3, 3, 3, 6, 6]

    never = LARC(make_sgd(make_params()))
    run(never, never.param_groups[0]["params"] + never.param_groups[1]["params"], range(3))
    assert never.latest_stats is None
    with pytest.raises(ValueError, match="stats_every"):
        LARC(make_sgd(make_params()), stats_every=-1)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("clip", [True, False], ids=["clip", "scale"])
def test_stats_values_follow_the_formula(clip: bool, mode: str) -> None:
    params = make_params()
    larc = make_larc(
        make_sgd(params, momentum=0.9),
        mode,
        2e-2,
        clip,
        exclude=lambda p: p is params[2],
        stats_every=1,
    )
    set_grads(params, 0)
    weights = [p.detach().double().clone() for p in params]
    grads = [None if p.grad is None else p.grad.double().clone() for p in params]
    larc.step()
    stats = larc.latest_stats
    assert isinstance(stats, TrustRatioStats)
    assert stats.step == 1
    assert stats.param_index == [0, 1, 2, 3, 5]  # param 4 has no grad
    host = stats.to_host()
    group_of = {i: g for g in GROUPS for i in g["indices"]}
    for entry, i in enumerate(stats.param_index):
        lr, wd = group_of[i]["lr"], group_of[i]["weight_decay"]
        w_norm, g_norm = weights[i].norm().item(), grads[i].norm().item()
        assert math.isclose(host["weight_norm"][entry], w_norm, rel_tol=1e-6)
        assert math.isclose(host["grad_norm"][entry], g_norm, rel_tol=1e-6)
        assert math.isclose(host["lr"][entry], lr, rel_tol=1e-7)
        adapted = i != 2 and w_norm != 0 and g_norm != 0
        assert host["adapted"][entry] is adapted
        if not adapted:  # zero norm (params 1 and 5 on step 0) or excluded (param 2)
            assert math.isnan(host["local_lr"][entry])
            assert host["factor"][entry] == 1.0
            assert host["clipped"][entry] is False
            continue
        local_lr = 2e-2 * w_norm / (g_norm + wd * w_norm + EPS)
        factor = min(local_lr / lr, 1.0) if clip else local_lr
        assert math.isclose(host["local_lr"][entry], local_lr, rel_tol=1e-6)
        assert math.isclose(host["factor"][entry], factor, rel_tol=1e-6)
        assert host["clipped"][entry] is (clip and local_lr < lr)


def test_stats_keep_param_groups_order_across_buckets() -> None:
    """Excluded and float64 tensors interleave in one group; entries stay in order."""
    a = nn.Parameter(torch.randn(4, 4))
    b = nn.Parameter(torch.randn(4))
    c = nn.Parameter(torch.randn(3, 3, dtype=torch.float64))
    d = nn.Parameter(torch.randn(2, 2))
    larc = LARC(torch.optim.SGD([a, b, c, d], lr=0.1), exclude_bias_and_norm=True, stats_every=1)
    for p in (a, b, c, d):
        p.grad = torch.ones_like(p)
    larc.step()
    stats = larc.latest_stats
    assert stats.param_index == [0, 1, 2, 3]
    assert stats.adapted.tolist() == [True, False, True, True]
    assert stats.weight_norm.dtype == torch.float32
    assert stats.grad_norm.tolist() == pytest.approx([4.0, 2.0, 3.0, 2.0])  # sqrt(numel)


def test_parameter_names_in_param_groups_order() -> None:
    model = _mlp()
    sgd = torch.optim.SGD(
        [{"params": [model[3].weight, model[0].bias]}, {"params": [model[1].weight]}], lr=0.1
    )
    larc = LARC(sgd)
    assert parameter_names(model, larc) == ["3.weight", "0.bias", "1.weight"]
    wrapped = nn.DataParallel(model)  # names carry "module." until unwrapped
    assert next(iter(dict(wrapped.named_parameters()))).startswith("module.")
    assert parameter_names(wrapped, larc) == ["3.weight", "0.bias", "1.weight"]
    stranger = torch.optim.SGD([nn.Parameter(torch.ones(1))], lr=0.1)
    with pytest.raises(ValueError, match="not a parameter"):
        parameter_names(model, stranger)


# ----------------------------------------------------------------------------- convergence


def _toy_classification() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    centers = torch.randn(3, 5, generator=gen) * 2.0
    labels = torch.arange(3).repeat_interleave(64)
    data = centers[labels] + 0.5 * torch.randn(len(labels), 5, generator=gen)
    return data, labels


@pytest.mark.parametrize("name", ["sgd", "larc"])
def test_converges_on_a_toy_problem(name: str) -> None:
    data, labels = _toy_classification()
    model = _mlp()
    sgd = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-4)
    optimizer = sgd if name == "sgd" else LARC(sgd, trust_coefficient=2e-2)
    first = None
    for _ in range(150):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(data), labels)
        loss.backward()
        optimizer.step()
        first = loss.item() if first is None else first
    assert first > 0.8
    assert loss.item() < 0.05
