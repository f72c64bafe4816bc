"""The trainer's extension points (loss objects, callbacks that stop) and its answers to faults and bad input."""

from __future__ import annotations

import json
import logging
import math
import threading

import pytest
import torch
from test_trainer import StopAt, make_config, make_pairs

from embedgui.engine import trainer as trainer_module
from embedgui.engine.callbacks import Callback, read_metrics
from embedgui.engine.loss import LossOutput
from embedgui.engine.trainer import Trainer, TrainingError, latest_snapshot


class AlignLoss:
    """Not InfoNCE: pulls each anchor towards its positive, no negatives; reports a fixed accuracy."""

    def __init__(self):
        self.calls = 0

    def __call__(self, model, batch):
        self.calls += 1
        anchors, candidates = model(batch["anchor"]), model(batch["candidates"])
        positives = candidates[: anchors.size(0)]
        return LossOutput(loss=(1 - (anchors * positives).sum(-1)).mean(), accuracy=0.25)


def test_custom_loss_object_trains_through_the_unchanged_loop(tiny_bert, tmp_path):
    loss = AlignLoss()
    cfg = make_config(tiny_bert, tmp_path, train={"steps_per_epoch": 3, "grad_accum_steps": 2, "batch_size": 4})
    result = Trainer(cfg, loss=loss).fit()
    assert result.status == "finished" and result.step == 3
    assert loss.calls == 6  # 3 optimizer steps x 2 micro-batches
    rows = read_metrics(tmp_path / "runs" / "run" / "metrics.jsonl")
    assert [r["acc"] for r in rows] == pytest.approx([0.25] * 3)
    assert all(0 <= r["loss"] <= 2 for r in rows)  # 1 - cosine of unit vectors
    assert rows[-1]["loss"] == result.summary["final_loss"]

    from embedgui.engine.modeling import load_embedder

    texts = ["the model", "a vector of the data"]
    before = load_embedder(str(tiny_bert), device="cpu").encode(texts)
    after = load_embedder(str(tmp_path / "runs" / "run"), device="cpu").encode(texts)
    assert not torch.allclose(before, after, atol=1e-4)


class Budget(Callback):
    def __init__(self, steps):
        self.steps, self.ends = steps, 0

    def on_log(self, state, logs):
        if state.step >= self.steps:
            self.control.stop(f"step budget of {self.steps} reached")

    def on_train_end(self, state):
        self.ends += 1


def test_a_callback_can_stop_the_run_and_on_train_end_comes_once(tiny_bert, tmp_path):
    budget = Budget(2)
    trainer = Trainer(make_config(tiny_bert, tmp_path, train={"steps_per_epoch": 20}), callbacks=[budget])
    result = trainer.fit()
    run = tmp_path / "runs" / "run"
    assert result.status == "stopped" and result.step == 2 and budget.ends == 1
    assert "step budget of 2 reached" in trainer.state.message
    assert latest_snapshot(run).name == "step-00000002" and (run / "model.safetensors").exists()

    failing = Budget(99)  # a run that fails in its set-up also ends once, through the same place
    cfg = make_config(tiny_bert, tmp_path / "fresh", train={"resume": True})
    trainer = Trainer(cfg, callbacks=[failing])
    with pytest.raises(TrainingError, match="Cannot resume"):
        trainer.fit()
    assert failing.ends == 1 and trainer.state.status == "failed" and "Cannot resume" in trainer.state.message


def test_log_and_summary_tell_the_hard_negatives_per_row(tiny_bert, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="embedgui")
    cfg = make_config(tiny_bert, tmp_path, train={"steps_per_epoch": 1}, data={"max_hard_negatives": 1})
    trainer = Trainer(cfg)
    result = trainer.fit()
    rows = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    counts = [len(r.get("hard_negatives", [])) for r in rows]
    used = sum(min(n, 1) for n in counts) / len(rows)
    expected = {"limit": 1, "data_max": max(counts), "used_mean": pytest.approx(used)}
    assert max(counts) == 2 and 0 < used < 1  # the data has rows with 0, 1 and 2 negatives
    assert result.summary["hard_negatives_per_row"] == expected
    summary = json.loads((tmp_path / "runs" / "run" / "metrics_summary.json").read_text())
    assert summary["hard_negatives_per_row"] == expected
    assert summary["precision_reason"] == trainer.state.precision_reason == "dtype float32 asked for"
    assert trainer.state.hard_negatives_per_row == pytest.approx(used)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("hard negatives per row")]
    assert lines == [f"hard negatives per row: limit 1, max in the data 2, mean used {used:.2f}"]


def test_resume_keeps_the_precision_never_saves_resume_and_knows_a_finished_run(tiny_bert, tmp_path, monkeypatch,
                                                                                caplog):
    monkeypatch.setenv("EMBEDGUI_CPU_BF16", "1")  # this process's probe says bf16 ...
    common = {"dtype": "auto", "train": {"steps_per_epoch": 4}}
    stop = threading.Event()
    first = Trainer(make_config(tiny_bert, tmp_path, **common), callbacks=[StopAt(1, stop)])
    assert first.fit(stop).step == 1 and first.state.precision == "bfloat16"
    run = tmp_path / "runs" / "run"

    monkeypatch.setenv("EMBEDGUI_CPU_BF16", "0")  # ... the next one's says float32: the resume keeps bf16
    cfg = make_config(tiny_bert, tmp_path, **common)
    cfg.train.resume = True
    stop = threading.Event()
    second = Trainer(cfg, callbacks=[StopAt(2, stop)])
    assert second.fit(stop).step == 2
    assert second.state.precision == "bfloat16" and "snapshot" in second.state.precision_reason
    assert json.loads((run / "train_config.json").read_text())["train"]["resume"] is False
    assert cfg.train.resume is True  # the caller's config is not changed

    # The snapshot came from another device: the precision is chosen again, with a warning saying why.
    meta_path = latest_snapshot(run) / "meta.json"
    meta = json.loads(meta_path.read_text())
    assert meta["precision"] == "bfloat16" and meta["device"] == "cpu"
    meta_path.write_text(json.dumps({**meta, "device": "cuda", "precision": "float16"}))
    caplog.set_level(logging.WARNING, logger="embedgui")
    third = Trainer(cfg)
    assert third.fit().status == "finished" and third.state.precision == "float32"
    assert "trained in float16 on cuda" in caplog.text

    # Resuming the finished run says so, and changes nothing.
    before = (run / "metrics.jsonl").read_text()
    with pytest.raises(TrainingError, match=r"Nothing to resume: the run in .* finished at step 4/4"):
        Trainer(cfg).fit()
    assert (run / "metrics.jsonl").read_text() == before


def test_full_disk_during_a_snapshot_keeps_the_previous_one_resumable(tiny_bert, tmp_path, monkeypatch):
    real_save = torch.save
    full = {"on": True}

    def writer_that_runs_out_of_space(obj, f, *args, **kwargs):
        if full["on"] and "step-00000004" in str(f):
            with open(f, "wb") as out:
                out.write(b"\0" * 1024)  # half a file, then the disk is full
            raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 1024 vs 2048")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", writer_that_runs_out_of_space)
    cfg = make_config(tiny_bert, tmp_path, train={"steps_per_epoch": 6, "save_every": 2})
    trainer = Trainer(cfg)
    with pytest.raises(TrainingError) as info:
        trainer.fit()
    checkpoints = tmp_path / "runs" / "run" / "checkpoints"
    message = str(info.value)
    assert f"in {checkpoints}" in message and "free space there is" in message and "MB needed" in message
    assert "\n" not in message and trainer.state.status == "failed"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-00000002"]  # no .tmp left, the old one intact

    full["on"] = False
    cfg = make_config(tiny_bert, tmp_path, train={"steps_per_epoch": 6, "save_every": 2, "resume": True})
    result = Trainer(cfg).fit()
    assert result.status == "finished" and result.step == 6
    assert [r["step"] for r in read_metrics(tmp_path / "runs" / "run" / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]


def _no_model(*args, **kwargs):
    raise AssertionError("the model was loaded before the problem was found")


class ModelReached(Exception):
    pass


def _model_reached(*args, **kwargs):
    raise ModelReached


def test_unusable_output_folder_fails_before_the_model_loads(tiny_bert, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module, "load_embedder_from_config", _no_model)
    (tmp_path / "taken").write_text("a file where the runs folder should be")
    cfg = make_config(tiny_bert, tmp_path, output={"save_dir": str(tmp_path / "taken")})
    with pytest.raises(TrainingError, match=r"^Cannot write to the output folder .*taken.run") as info:
        Trainer(cfg).fit()
    assert "\n" not in str(info.value)


def test_read_only_output_folder_fails_at_once(tiny_bert, tmp_path, monkeypatch):
    """A read-only output folder: one sentence before the model loads. Root writes through file modes, so as root
    the folder is a read-only tmpfs mounted in a private mount namespace, and the real command line runs there."""
    import os
    import shutil
    import subprocess
    import sys

    from conftest import ROOT

    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0:
        monkeypatch.setattr(trainer_module, "load_embedder_from_config", _no_model)
        ro.chmod(0o500)
        try:
            with pytest.raises(TrainingError, match="Cannot write to the output folder"):
                Trainer(make_config(tiny_bert, tmp_path, output={"save_dir": str(ro)})).fit()
        finally:
            ro.chmod(0o700)
        return
    if not shutil.which("unshare") or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("as root a read-only folder needs a private mount namespace (unshare -m), not allowed here")
    config = tmp_path / "config.json"
    make_config(tiny_bert, tmp_path, output={"save_dir": str(ro)}).save(config)
    script = 'mount -t tmpfs -o ro none "$1" && exec "$2" -m embedgui train --config "$3" --quiet'
    result = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(ro), sys.executable, str(config)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Cannot write to the output folder" in result.stderr and "Traceback" not in result.stderr
    assert "loading the model" not in result.stdout + result.stderr


@pytest.mark.parametrize("rows, batch, why", [
    ([{"anchor": "term", "positive": "its definition"}], 8, "it has 1 row"),
    ([{"anchor": "term", "positive": "its  definition"}] * 3 + [{"anchor": "term", "positive": "its definition"}], 8,
     "share one anchor or one positive"),
    ([{"anchor": f"term {i}", "positive": f"definition {i}"} for i in range(6)], 1, "train.batch_size 1"),
])
def test_data_without_any_negative_is_refused(tiny_bert, tmp_path, monkeypatch, rows, batch, why):
    monkeypatch.setattr(trainer_module, "load_embedder_from_config", _no_model)
    path = tmp_path / "few.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = make_config(tiny_bert, tmp_path, train={"batch_size": batch}, data={"pairs_path": str(path)})
    with pytest.raises(TrainingError, match="^Nothing can be learned from") as info:
        Trainer(cfg).fit()
    assert why in str(info.value) and "\n" not in str(info.value)
    # one hard negative that differs from the positive is enough to learn from
    rows[0] = {**rows[0], "hard_negatives": ["another text"]}
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setattr(trainer_module, "load_embedder_from_config", _model_reached)
    with pytest.raises(ModelReached):
        Trainer(make_config(tiny_bert, tmp_path, train={"batch_size": batch}, data={"pairs_path": str(path)})).fit()


def test_batch_size_beyond_the_row_count_is_capped(tiny_bert, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="embedgui")
    pairs = make_pairs(tmp_path / "six.jsonl", n=6)
    cfg = make_config(tiny_bert, tmp_path, train={"batch_size": 10**12}, data={"pairs_path": str(pairs)})
    result = Trainer(cfg).fit()
    assert result.status == "finished" and result.max_steps == 1
    assert "train.batch_size 1000000000000 is more than the 6 training rows; using batches of 6" in caplog.text
    assert all(math.isfinite(r["loss"]) for r in read_metrics(tmp_path / "runs" / "run" / "metrics.jsonl"))


def test_early_stopping_is_a_callback_that_ends_the_run_saved_when_the_metric_stops_improving(tiny_bert, tmp_path):
    from embedgui.engine.callbacks import EarlyStopping, TrainerControl, TrainState

    stopper = EarlyStopping("ndcg@10", patience=2)
    stopper.control = TrainerControl()
    for value in (0.5, 0.6, 0.6, 0.55):
        stopper.on_evaluate(TrainState(), {"ndcg@10": value})
    assert stopper.control.should_stop and "has not improved on 0.6000 for 2 evaluations" in stopper.control.reason

    # A learning rate too small to change anything: the metric never improves after the first evaluation.
    config = make_config(tiny_bert, tmp_path, train={"eval_every": 1, "early_stopping_patience": 2,
                                                     "steps_per_epoch": 20},
                         optim={"lr": 1e-12}, data={"eval_split": 0.25})
    trainer = Trainer(config)
    result = trainer.fit()
    assert result.status == "stopped" and result.step == 3, (result.status, result.step)
    assert "ndcg@10 has not improved" in trainer.state.message
    assert (config.run_dir / "model.safetensors").exists() and latest_snapshot(config.run_dir) is not None


def test_a_time_budget_plans_a_complete_run_that_ends_in_time_and_saves(tiny_bert, tmp_path, monkeypatch):
    """train.max_minutes with a fake clock (each step takes 5 s of it, nothing really waits): after the timed steps
    the run plans as many steps as fit, its schedule decays to the end of that plan, and it ends finished, evaluated
    and saved before the budget runs out."""
    from embedgui.engine import callbacks
    from embedgui.engine.callbacks import Callback

    now = [0.0]
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: now[0])

    class FiveSecondSteps(Callback):
        def on_step_end(self, state):
            now[0] += 5.0

    config = make_config(tiny_bert, tmp_path, train={"max_minutes": 1.0, "epochs": 1, "steps_per_epoch": 2,
                                                     "eval_every": 0},
                         optim={"scheduler": "linear", "warmup_ratio": 0.1}, data={"eval_split": 0.2})
    trainer = Trainer(config, callbacks=[FiveSecondSteps()])
    result = trainer.fit()
    planned = trainer.budget.planned
    assert result.status == "finished" and result.step == planned == result.max_steps
    assert planned > 2  # more than the 2 steps train.epochs would give: the budget decides the length
    reserve = trainer._finish_seconds(5.0)
    assert 0 < reserve < 30
    assert now[0] + reserve <= 60.0 < now[0] + reserve + 2 * 5.0  # ends in time, and no step could have been added
    rows = [json.loads(line) for line in (config.run_dir / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in rows if r["kind"] == "train"]
    assert lrs[-1] < 0.2 * max(lrs)  # the schedule decayed to the end of the plan, not of the 2 epoch steps
    # optim.short_run_steps (64) raises a plan of ~10 steps to 2 x optim.lr, but only once the budget has planned:
    # the first step, on the provisional total of 3 steps (no warmup step in it), runs at optim.lr, not twice it.
    assert lrs[0] == pytest.approx(1e-3) and max(lrs) > 1.5e-3, lrs
    assert any(r["kind"] == "eval" for r in rows) and (config.run_dir / "model.safetensors").exists()
    assert json.loads((config.run_dir / "metrics_summary.json").read_text())["max_minutes"] == 1.0


def test_a_time_budget_replans_when_the_first_timed_step_was_slow(tiny_bert, tmp_path, monkeypatch):
    """Steps differ in time (a batch of long texts takes several times a short one): a plan made from a slow first
    timing must grow as the run times more steps, so the budget is used, and still end in time. Fake clock: the
    first two steps take 10 s, every later one 1 s."""
    from embedgui.engine import callbacks
    from embedgui.engine.callbacks import Callback

    now = [0.0]
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: now[0])

    class SlowThenFast(Callback):
        def on_step_end(self, state):
            now[0] += 10.0 if state.step <= 2 else 1.0

    config = make_config(tiny_bert, tmp_path, train={"max_minutes": 1.0, "epochs": 1, "steps_per_epoch": 2})
    trainer = Trainer(config, callbacks=[SlowThenFast()])
    result = trainer.fit()
    reserve = trainer._finish_seconds(1.0)
    assert result.status == "finished" and result.step == trainer.budget.planned
    # 20 s went on the two slow steps; the rest of the minute holds about 40 one-second steps (a plan kept from
    # the first timing, 10 s a step, would have stopped near step 6).
    assert now[0] + reserve <= 60.0 and result.step > 30, (result.step, now[0], reserve)


def test_a_resumed_budgeted_run_keeps_its_plan_as_its_most(tiny_bert, tmp_path, monkeypatch):
    """Stopped at step 4 of a 1-minute budget of 5 s steps (fake clock), then resumed: the resumed run has a fresh
    minute, but finishes the plan it was started with rather than planning a longer one."""
    from embedgui.engine import callbacks

    now = [0.0]
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: now[0])

    class FiveSecondSteps(Callback):
        def on_step_end(self, state):
            now[0] += 5.0

    config = make_config(tiny_bert, tmp_path, train={"max_minutes": 1.0, "steps_per_epoch": 2, "log_every": 1})
    stop = threading.Event()
    first = Trainer(config, callbacks=[FiveSecondSteps(), StopAt(4, stop)])
    assert first.fit(stop).status == "stopped"
    plan = first.state.max_steps
    assert plan > 4
    now[0] = 0.0
    resumed = Trainer(make_config(tiny_bert, tmp_path, train={"max_minutes": 1.0, "steps_per_epoch": 2,
                                                               "log_every": 1, "resume": True}),
                      callbacks=[FiveSecondSteps()])
    result = resumed.fit()
    assert result.status == "finished" and result.step == plan == result.max_steps
