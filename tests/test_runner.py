from __future__ import annotations

import time

import pytest
from test_trainer import make_config

from embedgui.engine.config import ConfigError
from embedgui.engine.runner import Run, RunBusyError


def wait_for(run, predicate, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        snap = run.snapshot()
        if predicate(snap):
            return snap
        time.sleep(0.05)
    raise AssertionError(f"timed out; last snapshot {run.snapshot()}")


def test_run_trains_in_background_and_second_start_is_refused(tiny_bert, tmp_path):
    run = Run()
    cfg = make_config(tiny_bert, tmp_path, train={"steps_per_epoch": 200})
    run.start(cfg)
    with pytest.raises(RunBusyError, match="already going"):
        run.start(cfg)
    snap = wait_for(run, lambda s: len(s.logs) >= 2)
    assert snap.status in ("running", "stopping") and snap.device == "cpu" and snap.max_steps == 200
    assert run.stop()
    assert run.wait(60)
    final = run.snapshot()
    assert final.status == "stopped" and 2 <= final.step < 200
    assert [r["step"] for r in final.logs] == list(range(1, final.step + 1))
    assert any("Device cpu" in line for line in final.log_lines)
    # a second snapshot (another tab, a reloaded page) shows the same history
    assert run.snapshot().logs == final.logs


def test_user_error_becomes_one_message(tiny_bert, tmp_path):
    run = Run()
    cfg = make_config(tiny_bert, tmp_path)
    cfg.model_id = str(tmp_path / "missing-model")
    cfg.hf.local_files_only = True
    run.start(cfg)
    run.wait(60)
    snap = run.snapshot()
    assert snap.status == "failed" and "missing-model" in snap.message and "\n" not in snap.message
    with pytest.raises(ConfigError):
        cfg.train.batch_size = 0
        run.start(cfg)


def test_stop_after_the_end_changes_nothing(tiny_bert, tmp_path):
    run = Run()
    run.start(make_config(tiny_bert, tmp_path, train={"steps_per_epoch": 2}))
    assert run.wait(60)
    run._stop.set()  # a Stop click racing the end of the run: its event arrives after "done"
    run._queue.put(("stopping", None, None))
    snap = run.snapshot()
    assert snap.status == "finished" and "finished at step 2/2" in snap.message
