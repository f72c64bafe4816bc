"""torchrun with 2 CPU processes (gloo): cross-device negatives, data shards, one set of outputs, exact resume."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from embedgui.engine.data import Pair, PairCollator, batches_per_pass
from embedgui.engine.distributed import World, shard

ROOT = Path(__file__).resolve().parent.parent


def torchrun(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node 2 ARGS` with this checkout importable; fails the test on exit != 0."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc


def test_shards_are_contiguous_cover_the_batch_and_differ_by_at_most_one_row():
    rows = list(range(11))
    for size in (1, 2, 3, 4):
        parts = [shard(rows, World(rank, size)) for rank in range(size)]
        assert [r for p in parts for r in p] == rows  # concatenated in rank order = the global batch
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_a_last_batch_too_small_for_every_process_is_dropped():
    assert batches_per_pass(10, 4) == 3  # 4 + 4 + 2
    assert batches_per_pass(9, 4) == 2  # a last batch of one row has no negative
    assert batches_per_pass(10, 8, min_last=4) == 1  # 2 rows cannot give 4 processes a row each
    assert batches_per_pass(12, 8, min_last=4) == 2


def test_text_ids_are_the_same_whatever_batch_the_text_is_in(tiny_bert):
    """Under torchrun the false-negative mask compares ids across processes' batches: an id depends on the text."""
    from transformers import AutoTokenizer

    collator = PairCollator(AutoTokenizer.from_pretrained(tiny_bert), 32)
    a = collator([Pair("x", "the loss"), Pair("y", "a token")])
    b = collator([Pair("z", "a token"), Pair("w", "The  loss")])  # fold() makes case and spacing one text
    assert a["positive_ids"].tolist() == b["positive_ids"].flip(0).tolist()
    assert len(set(a["anchor_ids"].tolist()) | set(b["anchor_ids"].tolist())) == 4


@pytest.mark.slow
def test_gathered_loss_and_gradients_equal_one_process_on_the_concatenated_batch(tiny_bert, tmp_path):
    """Each rank scores its share against every rank's candidates; the averaged gradients are the full batch's."""
    torchrun(str(ROOT / "tests" / "dist_worker.py"), str(tiny_bert), str(tmp_path), cwd=tmp_path)
    for rank in (0, 1):
        results = json.loads((tmp_path / f"rank-{rank}.json").read_text())
        # Leaving the group ends its gloo threads (torch.distributed.nn, imported after init, kept the group alive
        # past destroy_process_group in its default arguments, and a rank then aborted at exit now and then).
        assert results.pop("gloo_threads_after_shutdown") in ([], None)
        assert set(results) == {"plain", "symmetric", "matryoshka", "gradcache"}
        for kind, r in results.items():
            assert r["loss_gathered"] == pytest.approx(r["loss_reference"], rel=1e-5), kind
            assert r["grad_max_abs"] > 0.1, kind  # the gradients are not trivially zero
            assert r["grad_max_diff"] <= 1e-5 * r["grad_max_abs"], (kind, r)
    # The learned temperature of the symmetric loss is one more parameter, averaged like the model's.
    assert results["symmetric"]["params"] == results["plain"]["params"] + 1


def _pairs(path: Path, n: int = 60) -> None:
    words = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau "
             "upsilon").split()
    rows = []
    for i in range(n):
        a, b = words[i % len(words)], words[(i * 7 + 3) % len(words)]
        negatives = [f"the {b} of {a}"] if i % 3 == 0 else []  # the ranks' candidate counts differ
        rows.append({"anchor": f"{a} {b} {i}", "positive": f"the {a} of {b} model data {i}",
                     "hard_negatives": negatives})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _config(path: Path, model: Path, name: str, steps: int, epochs: int, stream: bool) -> Path:
    config = {
        "model_id": str(model), "device": "cpu", "dtype": "float32",
        "train": {"batch_size": 4, "epochs": epochs, "steps_per_epoch": steps, "log_every": 1, "max_length": 32,
                  "save_every": 2},
        # constant rate: the run of 3 + 3 steps and the run of 6 steps follow the same schedule
        "optim": {"lr": 1e-3, "scheduler": "constant", "warmup_ratio": 0},
        "data": {"pairs_path": "pairs.jsonl", "stream": stream, "shuffle_buffer": 16},
        "output": {"save_dir": "out", "save_name": name},
    }
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True], ids=["in-memory", "streamed"])
def test_two_processes_train_write_one_set_of_outputs_and_resume_exactly(tiny_bert, tmp_path, stream):
    from safetensors.torch import load_file

    _pairs(tmp_path / "pairs.jsonl")
    whole = _config(tmp_path / "whole.json", tiny_bert, "whole", 6, 1, stream)
    half = _config(tmp_path / "half.json", tiny_bert, "split", 3, 1, stream)
    rest = _config(tmp_path / "rest.json", tiny_bert, "split", 3, 2, stream)
    proc = torchrun("-m", "embedgui", "train", "--config", str(whole), "--quiet", cwd=tmp_path)
    assert proc.stdout.count("finished at step 6/6") == 1  # rank 0 speaks, rank 1 does not
    torchrun("-m", "embedgui", "train", "--config", str(half), "--quiet", cwd=tmp_path)
    torchrun("-m", "embedgui", "train", "--config", str(rest), "--quiet", "--resume", cwd=tmp_path)

    for name in ("whole", "split"):
        run = tmp_path / "out" / name
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2, 3, 4, 5, 6]  # one writer, no repeats
        summary = json.loads((run / "metrics_summary.json").read_text())
        assert summary["processes"] == 2 and summary["steps"] == 6
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000004", "step-00000006"]
        assert (run / "model.safetensors").exists() and (run / "modules.json").exists()
    assert not list(tmp_path.glob("out/*/*.tmp"))

    whole_rows = [json.loads(line) for line in (tmp_path / "out/whole/metrics.jsonl").read_text().splitlines()]
    split_rows = [json.loads(line) for line in (tmp_path / "out/split/metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in split_rows] == pytest.approx([r["loss"] for r in whole_rows], rel=1e-6)
    a = load_file(tmp_path / "out/whole/model.safetensors")
    b = load_file(tmp_path / "out/split/model.safetensors")
    # Stopped and resumed on 2 processes = uninterrupted: each rank's data share and dropout RNG come back.
    assert max((a[k] - b[k]).abs().max().item() for k in a) == 0.0


@pytest.mark.slow
def test_the_app_runner_trains_on_several_processes_stops_and_resumes(tiny_bert, tmp_path):
    """With several GPUs the app launches torchrun and follows rank 0; here 2 CPU processes stand in for them."""
    from embedgui.engine.config import load_config
    from embedgui.engine.runner import PROCESS_LOG_NAME, Run

    _pairs(tmp_path / "pairs.jsonl")
    path = _config(tmp_path / "config.json", tiny_bert, "app", 5000, 1, False)
    config = load_config(path)
    config.output.save_dir = str(tmp_path / "out")  # the app's folder, not the test's working directory
    run = Run(processes=2)
    run.start(config)
    deadline = time.monotonic() + 240
    while not run.snapshot().logs and time.monotonic() < deadline:
        time.sleep(0.3)
    assert run.snapshot().logs, run.snapshot().log_lines[-20:]
    assert run.stop()
    assert run.wait(120)
    stopped = run.snapshot()
    assert stopped.status == "stopped", (stopped.message, stopped.log_lines[-20:])
    assert 0 < stopped.step < 5000 and stopped.device == "cpu"
    run_dir = tmp_path / "out" / "app"
    assert (run_dir / "checkpoints" / f"step-{stopped.step:08d}").is_dir()
    process_log = (run_dir / PROCESS_LOG_NAME).read_text()
    assert "Joined the process group: rank 0 of 2" in process_log
    # --no-bar's row lines go to the process's log file, not into the app's log view (the charts show them)
    assert re.search(r"^step \d+/\d+  epoch ", process_log, re.M), process_log[-2000:]
    assert not any(line.startswith("step ") for line in stopped.log_lines)
    assert not (run_dir / ".stop").exists()

    config.train.steps_per_epoch = stopped.step + 3
    run.start(config, resume=True)
    assert run.wait(240)
    done = run.snapshot()
    assert done.status == "finished", (done.message, done.log_lines[-20:])
    assert done.step == stopped.step + 3
    steps = [row["step"] for row in done.logs]
    assert steps[0] == 1 and steps[-1] == done.step  # the chart shows the whole run, before and after the resume
    assert (run_dir / "model.safetensors").exists()


def test_a_shard_collator_survives_pickling_for_dataloader_workers():
    import pickle

    from embedgui.engine.distributed import ShardCollator

    collator = ShardCollator(list, World(1, 2))
    again = pickle.loads(pickle.dumps(collator))
    assert again(list(range(5))) == [3, 4] and again.world == World(1, 2)


def test_the_app_can_be_told_how_many_training_processes_to_start(monkeypatch):
    from embedgui.engine.config import Config
    from embedgui.engine.runner import Run

    config = Config(device="cpu")
    assert Run()._processes_for(config) == 1  # a CPU run trains in the app's own thread
    monkeypatch.setenv("EMBEDGUI_PROCESSES", "2")
    assert Run()._processes_for(config) == 2
    assert Run(processes=1)._processes_for(config) == 1  # an explicit count wins
    monkeypatch.setenv("EMBEDGUI_PROCESSES", "1")
    assert Run()._processes_for(Config(device="cuda")) == 1
