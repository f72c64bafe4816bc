from __future__ import annotations

import json
import logging
import threading
import time

import pytest
from test_trainer import make_config

from embedgui.engine import runs
from embedgui.engine.callbacks import Callback
from embedgui.engine.config import ConfigError
from embedgui.engine.runner import Run, RunBusyError, RunOwnerError, RunSnapshot
from embedgui.engine.trainer import Trainer

# Steps a run is given when the test stops it: more than a tiny model gets through before the stop lands, however
# fast its steps are (200 were not enough once dropout went off on the CPU).
LONG = 100_000


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
    cfg = make_config(tiny_bert, tmp_path, train={"steps_per_epoch": LONG})
    run.start(cfg)
    with pytest.raises(RunBusyError, match="already going"):
        run.start(cfg)
    snap = wait_for(run, lambda s: len(s.logs) >= 2)
    assert snap.status in ("running", "stopping") and snap.device == "cpu" and snap.max_steps == LONG
    assert run.stop()
    assert run.wait(60)
    final = run.snapshot()
    assert final.status == "stopped" and 2 <= final.step < LONG
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
    assert not cfg.run_dir.exists() and run.current_dir == str(cfg.run_dir)  # no empty run folder is left
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


class StopAtStep(Callback):
    def __init__(self, step, event):
        self.step, self.event = step, event

    def on_log(self, state, logs):
        if state.step >= self.step:
            self.event.set()


def test_resume_shows_the_whole_run_and_leaves_the_callers_config_alone(tiny_bert, tmp_path):
    cfg = make_config(tiny_bert, tmp_path, train={"steps_per_epoch": 8, "eval_every": 2},
                      data={"eval_split": 0.25})
    stop = threading.Event()
    Trainer(cfg, callbacks=[StopAtStep(4, stop)]).fit(stop)  # stopped at step 4 with a snapshot
    before = cfg.to_dict()
    run = Run()
    assert run.current_dir is None
    run.start(cfg, resume=True)
    assert run.current_dir == str(cfg.run_dir)
    assert run.wait(120)
    snap = run.snapshot()
    assert snap.status == "finished", snap.message
    assert [r["step"] for r in snap.logs] == list(range(1, 9))  # steps 1-4 come from metrics.jsonl
    assert [r["step"] for r in snap.evals] == [2, 4, 6, 8]
    assert snap.logs[:4] == runs.load_history(cfg.run_dir, up_to_step=4)[0]
    assert snap.precision == "float32" and snap.precision_reason
    assert cfg.to_dict() == before and cfg.train.resume is False
    assert json.loads((cfg.run_dir / "train_config.json").read_text())["train"]["resume"] is False
    assert run.current_dir == str(cfg.run_dir) and not run.active


def test_run_log_keeps_only_its_own_thread_and_never_changes_the_logger_level(tiny_bert, tmp_path):
    logger = logging.getLogger("embedgui")
    original = logger.level
    logger.setLevel(logging.DEBUG)  # what a process chose at start (launch.py sets INFO); a run must keep it
    try:
        _run_with_other_threads_logging(tiny_bert, tmp_path, logger, logging.DEBUG)
    finally:
        logger.setLevel(original)


def _run_with_other_threads_logging(tiny_bert, tmp_path, logger, level):
    run = Run()
    assert logger.level == level  # Run() sets a level only where nobody has
    run.start(make_config(tiny_bert, tmp_path, train={"steps_per_epoch": LONG}))
    during = []
    crawl_log = logging.getLogger("embedgui.engine.crawler")

    def other_thread():
        crawl_log.warning("crawl says hello from another thread")

    snap = wait_for(run, lambda s: len(s.logs) >= 1)
    during.append(logger.level)
    for _ in range(3):
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
    crawl_log.warning("the UI thread says hello")
    snap = wait_for(run, lambda s: len(s.logs) >= 2)
    during.append(logger.level)
    run.stop()
    assert run.wait(60)
    final = run.snapshot()
    assert any("Device cpu" in line for line in final.log_lines)
    assert not any("hello" in line for line in final.log_lines + snap.log_lines)
    assert during == [level, level] and logger.level == level
    assert not any(type(h).__name__ == "_RingHandler" for h in logger.handlers)


def test_a_start_stopped_at_once_leaves_no_empty_run_folder(tiny_bert, tmp_path):
    run = Run()
    cfg = make_config(tiny_bert, tmp_path / "b", data={"eval_split": 0.25})
    run.start(cfg)
    assert cfg.run_dir.is_dir()  # listed from the first moment, as "running"
    assert [i.status for i in runs.list_runs(cfg.run_dir.parent, active_dir=run.current_dir)] == ["running"]
    assert run.stop() and run.wait(60)
    assert run.snapshot().status == "stopped" and not cfg.run_dir.exists()


def test_hosted_run_belongs_to_the_session_that_started_it(tiny_bert, tmp_path):
    run = Run(single_user=False)
    cfg = make_config(tiny_bert, tmp_path, train={"steps_per_epoch": LONG})
    run.start(cfg, owner="alice")
    assert run.can_control("alice") and not run.can_control("bob") and not run.can_control(None)
    with pytest.raises(RunOwnerError, match="Another visitor's run"):
        run.start(make_config(tiny_bert, tmp_path / "b"), owner="bob")
    with pytest.raises(RunBusyError):
        run.start(make_config(tiny_bert, tmp_path / "a2"), owner="alice")
    wait_for(run, lambda s: len(s.logs) >= 1)
    with pytest.raises(RunOwnerError, match="only they can stop or resume it"):
        run.stop(owner="bob")
    assert run.snapshot().status == "running"
    assert run.stop(owner="alice") and run.wait(60)
    assert run.snapshot().status == "stopped"
    with pytest.raises(RunOwnerError, match="only they can stop or resume it"):
        run.start(cfg, resume=True, owner="bob")
    assert run.stop(owner="bob") is False  # nothing runs: nothing to refuse
    # a new run of bob's own, once alice's has ended
    other = make_config(tiny_bert, tmp_path / "b", train={"steps_per_epoch": 1})
    run.start(other, owner="bob")
    assert run.wait(60) and run.snapshot().status == "finished"
    assert run.can_control("alice", cfg.run_dir) and not run.can_control("bob", cfg.run_dir)
    assert run.can_control("bob", tmp_path / "from-an-earlier-process")  # a run nobody here started is nobody's


def test_single_user_runs_ignore_owners(tiny_bert, tmp_path):
    run = Run()
    run.start(make_config(tiny_bert, tmp_path, train={"steps_per_epoch": LONG}), owner="tab-1")
    assert run.can_control("tab-2")
    wait_for(run, lambda s: len(s.logs) >= 1)
    assert run.stop(owner="tab-2") and run.wait(60)
    stopped = run.snapshot().step  # wherever the stop landed (a busy machine trains a few steps before it)
    run.start(make_config(tiny_bert, tmp_path, train={"steps_per_epoch": stopped + 2}), resume=True, owner=None)
    assert run.wait(60) and run.snapshot().status == "finished"


def test_run_sets_the_log_level_once_only_where_nobody_chose_one():
    logger = logging.getLogger("embedgui")
    original = logger.level
    try:
        logger.setLevel(logging.NOTSET)
        Run()
        assert logger.level == logging.INFO
        logger.setLevel(logging.WARNING)
        Run()
        assert logger.level == logging.WARNING
    finally:
        logger.setLevel(original)


def test_set_up_phases_reach_the_snapshot():
    from embedgui.engine.callbacks import QueueCallback, TrainState

    run = Run()
    run._snap = RunSnapshot(status="starting")
    state = TrainState(status="starting", message="loading the model")
    QueueCallback(run._queue).on_phase(state, "model")
    snap = run.snapshot()
    assert snap.phase == "model" and snap.message == "loading the model" and snap.status == "starting"
    state.status, state.message = "running", "evaluating"
    QueueCallback(run._queue).on_phase(state, "eval")
    snap = run.snapshot()
    assert snap.phase == "eval" and snap.message == "loading the model"  # a running run keeps its line
