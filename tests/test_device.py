from __future__ import annotations

import json
import multiprocessing
import os
import time

import pytest
import torch

from embedgui.engine import device


@pytest.fixture
def probe_env(tmp_path, monkeypatch):
    """A CPU that claims native bf16, a private cache folder and no verdict from earlier in this process."""
    monkeypatch.setenv("EMBEDGUI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("EMBEDGUI_CPU_BF16", raising=False)
    monkeypatch.setattr(device, "_cpu_info", lambda: ("Fake CPU 9000", {"avx512f", "avx512_bf16"}))
    monkeypatch.setattr(device, "_verdict", None)
    return tmp_path / "cache" / device.CACHE_NAME


def test_probe_verdict_is_cached_per_machine_and_reused_by_later_processes(probe_env, monkeypatch):
    calls = []

    def fake_probe(shape=device.PROBE_SHAPE, rounds=7, budget_s=0.4):
        calls.append(shape)
        return 0.010, 0.004, rounds  # bf16 2.5x faster

    monkeypatch.setattr(device, "_probe_seconds", fake_probe)
    fast, why = device.cpu_bf16_is_faster()
    assert fast and "bf16 4.00 ms vs fp32 10.00 ms, bfloat16" in why and "cached" not in why
    assert calls == [device.SCREEN_SHAPE, device.PROBE_SHAPE]
    saved = json.loads(probe_env.read_text())
    assert [entry["bf16"] for entry in saved.values()] == [True]

    # A later process (no verdict in memory) reads the file and never probes; the reason says so.
    monkeypatch.setattr(device, "_verdict", None)
    monkeypatch.setattr(device, "_probe_seconds", lambda *a, **k: pytest.fail("probed again"))
    fast, why = device.cpu_bf16_is_faster()
    assert fast and "cached" in why and str(probe_env) in why
    precision = device.resolve_precision("auto", torch.device("cpu"))
    assert precision.name == "bfloat16" and "cached" in precision.reason

    # Another torch version is another key: the probe runs again.
    monkeypatch.setattr(device, "_verdict", None)
    monkeypatch.setattr(torch, "__version__", "0.0-other")
    monkeypatch.setattr(device, "_probe_seconds", lambda *a, **k: (0.010, 0.009, 5))
    assert device.cpu_bf16_is_faster()[0] is False
    assert len(json.loads(probe_env.read_text())) == 2


def test_emulated_bf16_is_screened_out_on_a_small_matmul(probe_env, monkeypatch):
    calls = []

    def fake_probe(shape=device.PROBE_SHAPE, rounds=7, budget_s=0.4):
        calls.append(shape)
        return 0.001, 0.050, 1  # emulated: 50x slower

    monkeypatch.setattr(device, "_probe_seconds", fake_probe)
    fast, why = device.cpu_bf16_is_faster()
    assert not fast and calls == [device.SCREEN_SHAPE] and "float32" in why


def test_environment_override_wins_over_the_cache(probe_env, monkeypatch):
    monkeypatch.setattr(device, "_probe_seconds", lambda *a, **k: (0.010, 0.004, 7))
    assert device.cpu_bf16_is_faster()[0] is True
    monkeypatch.setenv("EMBEDGUI_CPU_BF16", "0")
    assert device.cpu_bf16_is_faster() == (False, "EMBEDGUI_CPU_BF16=0")


def test_unwritable_cache_only_costs_a_probe(tmp_path, probe_env, monkeypatch):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("EMBEDGUI_CACHE_DIR", str(tmp_path / "file" / "cache"))  # a file where a folder should be
    monkeypatch.setattr(device, "_probe_seconds", lambda *a, **k: (0.010, 0.004, 7))
    assert device.cpu_bf16_is_faster()[0] is True


def test_real_probe_gives_a_verdict_with_its_reason(probe_env):
    # Its time budget (0.5 s) is the probe's own loop bound, not asserted here: no timed tests.
    fast, why = device._probe_verdict()
    assert "median of" in why and isinstance(fast, bool)


def test_resume_keeps_the_snapshot_precision_unless_the_device_changed(caplog):
    cpu = torch.device("cpu")
    kept = device.precision_for_resume("auto", cpu, "bfloat16", "cpu")
    assert kept.name == "bfloat16" and "snapshot" in kept.reason
    caplog.set_level("WARNING")
    moved = device.precision_for_resume("auto", cpu, "float16", "cuda")
    assert moved.name in ("float32", "bfloat16") and "trained in float16 on cuda" in caplog.text
    caplog.clear()
    asked = device.precision_for_resume("float32", cpu, "bfloat16", "cpu")
    assert asked.name == "float32" and "dtype float32 is set" in caplog.text


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@pytest.mark.skipif(not device.Path("/proc/stat").exists(), reason="the governor reads Linux's /proc/stat")
def test_thread_governor_gives_cores_to_other_processes_and_takes_them_back(monkeypatch):
    """Other processes busy on every core: one thread (two would stall each other's operators); quiet: all again."""
    device.configure_threads()
    governor = device.ThreadGovernor(every=0.5)
    if not governor.enabled:
        pytest.skip(f"one usable core, a CPU quota or OMP_NUM_THREADS here: {device.configure_threads()}")
    full = device._full_threads
    before = torch.get_num_threads()
    ctx = multiprocessing.get_context("spawn")
    hogs = [ctx.Process(target=_spin, args=(8.0,), daemon=True) for _ in range(len(governor.cpus))]
    try:
        for p in hogs:
            p.start()
        time.sleep(1.0)
        governor.update()  # the window since creation: the hogs were starting; judge a clean one next
        time.sleep(1.0)
        change = governor.update()
        assert torch.get_num_threads() == 1, change
        for p in hogs:
            p.terminate()
            p.join()
        # Quiet again. The machine running the tests may be busy with something else; this process's CPU time stands
        # in for the machine's busy time, so the governor sees no other process at all.
        monkeypatch.setattr(device, "_cpu_seconds", lambda cpus: sum(os.times()[:2]))
        governor._last = governor._reading()
        time.sleep(1.0)
        governor.update()
        assert torch.get_num_threads() == full
    finally:
        for p in hogs:
            p.kill()
        torch.set_num_threads(before)


def test_side_work_beside_a_training_run_uses_one_thread_and_gives_it_back():
    before = torch.get_num_threads()
    with device.side_threads(busy=True):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with device.side_threads(busy=False):
        assert torch.get_num_threads() == before
