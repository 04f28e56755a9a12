"""The psutil path on real processes: finding ranks under a parent, their CPU and RSS."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from larsbench.events import EventWriter, read_events
from larsbench.telemetry import nvml
from larsbench.telemetry.procs import find_rank_pids
from larsbench.telemetry.sampler import Sampler
from larsbench.telemetry.snapshots import PSUTIL

# Stands for torchrun (`python tree.py torchrun`): rank 0 spins; a shell without LOCAL_RANK
# starts rank 1, which sleeps and starts one spinning data-loader worker that inherits LOCAL_RANK.
TREE = textwrap.dedent(
    """
    import os, subprocess, sys, time

    def spawn(role, local_rank=None):
        env = dict(os.environ, **({"LOCAL_RANK": local_rank} if local_rank else {}))
        subprocess.Popen([sys.executable, __file__, role], env=env)

    role = sys.argv[1]
    if role == "torchrun":
        spawn("spin", "0")
        spawn("shell")
    elif role == "shell":
        spawn("rank1", "1")
    elif role == "rank1":
        spawn("spin")
    if role == "spin":
        while True:
            pass
    time.sleep(120)
    """
)


@pytest.fixture
def torchrun_like(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[int]:
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    script = tmp_path / "tree.py"
    script.write_text(TREE)
    parent = subprocess.Popen([sys.executable, str(script), "torchrun"])
    yield parent.pid
    tree = psutil.Process(parent.pid).children(recursive=True)
    for proc in [*tree, psutil.Process(parent.pid)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    parent.wait()
    psutil.wait_procs(tree, timeout=5)


def wait_for_tree(torchrun_pid: int) -> dict[int, int]:
    """The two ranks, once rank 1's worker has started too."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pids = find_rank_pids(torchrun_pid)
        if len(pids) == 2 and psutil.Process(pids[1]).children():
            return pids
        time.sleep(0.05)
    raise AssertionError(f"ranks not found: {find_rank_pids(torchrun_pid)}")


def test_find_rank_pids_and_per_rank_cpu_and_rss(torchrun_like: int, tmp_path: Path) -> None:
    pids = wait_for_tree(torchrun_like)
    assert sorted(pids) == [0, 1]
    rank0, rank1 = psutil.Process(pids[0]), psutil.Process(pids[1])
    assert rank0.ppid() == torchrun_like  # rank 1 sits one level deeper, under the shell
    assert rank1.parent().ppid() == torchrun_like
    (worker,) = rank1.children()
    assert worker.environ()["LOCAL_RANK"] == "1" and worker.pid not in pids.values()

    with EventWriter(tmp_path / "system-node0.jsonl") as writer:
        sampler = Sampler(writer, interval=0.25, device="cpu")
        sampler.set_ranks(pids)
        sampler.sample_once()  # baselines
        time.sleep(1.0)
        sample = sampler.sample_once()
    assert sampler.source == PSUTIL and sample.devices == ()
    r0, r1 = sample.ranks
    assert (r0.local_rank, r0.pid, r1.local_rank, r1.pid) == (0, pids[0], 1, pids[1])
    # Two spinning processes on this machine's cores; loose bounds for a busy CI box.
    assert r0.cpu_percent is not None and r0.cpu_percent > 15
    assert r1.cpu_percent is not None and r1.cpu_percent < 15
    assert r0.workers == 0 and r1.workers == 1
    assert r1.workers_cpu_percent is not None and r1.workers_cpu_percent > 15
    for rank in (r0, r1):
        assert rank.rss_bytes is not None and 1 << 20 < rank.rss_bytes < 1 << 30
        assert rank.gpu_mem_bytes is None
    assert r1.workers_rss_bytes is not None and r1.workers_rss_bytes > 1 << 20
    host = sample.host
    assert host.cpu_percent is not None and 0 < host.cpu_percent <= 100
    assert host.memory_total and 0 < host.memory_used < host.memory_total


def test_a_rank_that_exits_reads_none(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with EventWriter(tmp_path / "system-node0.jsonl") as writer:
        sampler = Sampler(writer, device="cpu")
        sampler.set_ranks({0: proc.pid, 1: 2**22 + 12345})  # the second never existed
        assert sampler.sample_once().ranks[0].rss_bytes
        proc.kill()
        proc.wait()
        r0, r1 = sampler.sample_once().ranks
    assert r0.cpu_percent is None and r0.rss_bytes is None and r0.workers_rss_bytes is None
    assert r1.cpu_percent is None and r1.rss_bytes is None


def test_find_rank_pids_of_a_missing_process() -> None:
    assert find_rank_pids(2**22 + 12345) == {}
    assert find_rank_pids(os.getpid()) == {}  # children without LOCAL_RANK


def test_real_binding_without_a_driver_falls_back_to_psutil(tmp_path: Path) -> None:
    """This machine has nvidia-ml-py but no libnvidia-ml: the real binding's failure path."""
    nvml.reset()
    try:
        if nvml.available():
            pytest.skip("this machine has a working NVML")
        with EventWriter(tmp_path / "system-node0.jsonl") as writer:
            sampler = Sampler(writer, interval=0.25, device="cuda")
            sampler.set_ranks({0: os.getpid()})
            sampler.start()
            time.sleep(0.6)
            sampler.stop()
        events = read_events(writer.path)
        assert events[0]["kind"] == "system_info" and events[0]["source"] == "psutil"
        assert events[0]["devices"] == [] and events[0]["cpu_count"] == psutil.cpu_count()
        assert [e["kind"] for e in events[1:]] == ["system"] * (len(events) - 1)
        assert len(events) >= 3 and sampler.errors == 0
        assert events[-1]["ranks"][0]["pid"] == os.getpid()
    finally:
        nvml.reset()


def test_telemetry_imports_neither_torch_nor_textual() -> None:
    code = (
        "import sys, larsbench.telemetry.sampler, larsbench.results\n"
        "from larsbench.events import EventWriter\n"
        "import tempfile, os\n"
        "w = EventWriter(os.path.join(tempfile.mkdtemp(), 's.jsonl'))\n"
        "s = larsbench.telemetry.sampler.Sampler(w, device='cuda'); s.sample_once()\n"
        "bad = {'torch', 'textual'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
