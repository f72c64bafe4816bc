"""Run folders: listing, history, compare, delete, model card, zip export and Hub push (against a fake Hub)."""

from __future__ import annotations

import json
import os
import threading
import time
import zipfile
from pathlib import Path

import pytest
from test_trainer import make_config

from embedgui.engine import runs
from embedgui.engine.config import Config, config_from_dict
from embedgui.engine.runs import ExportError, RunsError

MODEL_FILES = {"config.json", "modules.json", "sentence_bert_config.json", "model.safetensors", "tokenizer.json",
               "tokenizer_config.json", "vocab.txt", "1_Pooling/config.json", "README.md"}


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


def fake_run(root: Path, name: str, *, model_id: str = "sentence-transformers/all-MiniLM-L6-v2", summary=None,
             metrics=(), snapshot=None, model=False, error=None, evaluation=None, **sections) -> Path:
    """A run folder as the trainer leaves it, written by hand (no model is loaded)."""
    raw = {"model_id": model_id, "train": {"batch_size": 16, "epochs": 2, "max_length": 64, "temperature": 0.07},
           "optim": {"lr": 3e-5}, "data": {"pairs_path": "data/pairs.jsonl"}, **sections}
    folder = root / name
    config_from_dict(raw).save(folder / "train_config.json")
    if summary is not None:
        write(folder / "metrics_summary.json", json.dumps(summary))
    if metrics:
        write(folder / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in metrics))
    if snapshot is not None:
        write(folder / "checkpoints" / f"step-{snapshot:08d}" / "model.pt", b"weights")
    if error is not None:
        write(folder / "run_error.json", json.dumps({"message": error, "step": 3}))
    if evaluation is not None:
        write(folder / "evaluation.json", json.dumps(evaluation))
    if model:
        write(folder / "config.json", json.dumps({"model_type": "bert"}))
        write(folder / "modules.json", json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
        write(folder / "sentence_bert_config.json", "{}")
        write(folder / "1_Pooling" / "config.json", "{}")
        write(folder / "model.safetensors", b"\0" * 64)
        for tok in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
            write(folder / tok, "{}")
    return folder


def train_row(step, loss=1.0):
    return {"kind": "train", "step": step, "epoch": 1, "time": 1.0, "loss": loss, "acc": 0.5, "lr": 1e-5}


def eval_row(step, r1):
    return {"kind": "eval", "step": step, "epoch": 1, "time": 2.0, "recall@1": r1, "mrr@10": r1 + 0.1}


# -- names, listing, history ----------------------------------------------------------------------------------
def test_new_run_name_is_readable_safe_and_unique(tmp_path):
    now = time.mktime((2026, 11, 25, 14, 32, 10, 0, 0, -1))
    config = Config(model_id="sentence-transformers/all-MiniLM-L6-v2")
    name = runs.new_run_name(config, tmp_path, now=now)
    assert name == "20261125-143210-all-MiniLM-L6-v2"
    (tmp_path / name).mkdir()
    assert runs.new_run_name(config, tmp_path, now=now) == name + "-2"
    (tmp_path / (name + "-2")).mkdir()
    assert runs.new_run_name(config, tmp_path, now=now) == name + "-3"
    for odd in ("..", ".", "/models/my model (v2)/", "C:\\models\\x", "../../etc", "모델"):
        n = runs.new_run_name(Config(model_id=odd), tmp_path, now=now)
        assert n.startswith("20261125-143210-") and "/" not in n and "\\" not in n and " " not in n
        assert ".." not in n and not n.endswith(".")


def test_list_runs_reads_each_folder_newest_first(tmp_path):
    fake_run(tmp_path, "20260101-100000-done", model=True, metrics=[train_row(1), eval_row(4, 0.5)],
             summary={"status": "finished", "steps": 4, "max_steps": 4, "rows": 40, "precision": "bfloat16",
                      "pairs_path": "/w/data/pairs.jsonl", "final_eval": {"step": 4, "epoch": 1, "recall@1": 0.5}})
    fake_run(tmp_path, "20260102-100000-stopped", model=True, snapshot=2,
             summary={"status": "stopped", "steps": 2, "max_steps": 10, "rows": 40})
    fake_run(tmp_path, "20260103-100000-killed", snapshot=5, metrics=[train_row(s) for s in range(1, 7)],
             train={"steps_per_epoch": 5, "epochs": 2})
    fake_run(tmp_path, "20260104-100000-failed", error="The loss became nan at step 3.", snapshot=2)
    fake_run(tmp_path, "20260105-100000-live")
    (tmp_path / "not-a-run").mkdir()
    write(tmp_path / "stray.txt", "x")

    infos = runs.list_runs(tmp_path, active_dir=str(tmp_path / "20260105-100000-live"))
    by = {i.name.split("-")[-1]: i for i in infos}
    assert [i.name for i in infos] == sorted((i.name for i in infos), reverse=True) and len(infos) == 5
    assert {k: v.status for k, v in by.items()} == {"done": "finished", "stopped": "stopped", "killed": "incomplete",
                                                   "failed": "failed", "live": "running"}
    done = by["done"]
    assert (done.step, done.max_steps, done.rows, done.has_model, done.resumable) == (4, 4, 40, True, False)
    assert done.final_eval == {"recall@1": 0.5} and done.pairs_path == "/w/data/pairs.jsonl"
    assert done.settings == {"batch_size": 16, "epochs": 2, "lr": 3e-5, "max_length": 64, "temperature": 0.07,
                             "precision": "bfloat16", "peak_lr": None}
    assert done.model_id == "sentence-transformers/all-MiniLM-L6-v2" and done.created > 0
    assert by["stopped"].resumable and by["stopped"].max_steps == 10
    killed = by["killed"]
    assert (killed.step, killed.max_steps, killed.resumable, killed.has_model) == (6, 10, True, False)
    assert by["failed"].message == "The loss became nan at step 3." and by["failed"].resumable
    assert not by["live"].resumable and by["live"].rows is None
    assert runs.list_runs(tmp_path / "missing") == []


def test_final_metrics_prefer_the_evaluate_tab_then_the_summary_then_the_last_eval_row(tmp_path):
    a = fake_run(tmp_path, "a", metrics=[eval_row(2, 0.1), eval_row(4, 0.3)])
    assert runs.final_metrics(a) == ({"recall@1": 0.3, "mrr@10": pytest.approx(0.4)}, "training")
    write(a / "metrics_summary.json", json.dumps({"status": "finished", "steps": 4, "final_eval": {"recall@1": 0.35}}))
    assert runs.final_metrics(a)[0] == {"recall@1": 0.35}
    runs.save_evaluation(a, {"pairs": "/w/eval.jsonl", "queries": 50, "before": {"recall@1": 0.2},
                             "after": {"recall@1": 0.6}})
    assert runs.final_metrics(a) == ({"recall@1": 0.6}, "evaluation")
    saved = json.loads((a / "evaluation.json").read_text())
    assert saved["queries"] == 50 and saved["before"] == {"recall@1": 0.2} and saved["pairs"] == "/w/eval.jsonl"
    with pytest.raises(RunsError, match="not a run folder"):
        runs.save_evaluation(tmp_path / "nowhere", {"after": {}})


def test_load_history_has_the_snapshot_shape_and_stops_at_a_step(tmp_path):
    folder = fake_run(tmp_path, "r", metrics=[train_row(1, 2.0), train_row(2, 1.5), eval_row(2, 0.4), train_row(3)])
    with (folder / "metrics.jsonl").open("a") as f:
        f.write('{"kind": "train", "st')  # a torn last line from a killed process
    logs, evals = runs.load_history(folder)
    assert [r["step"] for r in logs] == [1, 2, 3] and logs[0] == {"step": 1, "epoch": 1, "loss": 2.0, "acc": 0.5,
                                                                   "lr": 1e-5}
    assert evals == [{"step": 2, "recall@1": 0.4, "mrr@10": pytest.approx(0.5)}]
    logs, evals = runs.load_history(folder, up_to_step=1)
    assert [r["step"] for r in logs] == [1] and evals == []
    assert runs.load_history(tmp_path / "none") == ([], [])


def test_compare_runs_side_by_side(tmp_path):
    a = fake_run(tmp_path, "a", summary={"final_eval": {"recall@1": 0.5, "ndcg@10": 0.7, "custom": 1.0}})
    b = fake_run(tmp_path, "b", evaluation={"before": {"recall@1": 0.1}, "after": {"recall@1": 0.75, "mrr@10": 0.8}})
    rows = runs.compare_runs(a, b)
    assert [r["metric"] for r in rows] == ["recall@1", "mrr@10", "ndcg@10", "custom"]
    assert rows[0] == {"metric": "recall@1", "a": 0.5, "b": 0.75, "delta": 0.25}
    assert rows[1] == {"metric": "mrr@10", "a": None, "b": 0.8, "delta": None}
    assert runs.compare_runs(tmp_path / "x", tmp_path / "y") == []


# -- delete -------------------------------------------------------------------------------------------------
def test_delete_run_refuses_anything_but_a_run_folder_inside_the_runs_folder(tmp_path):
    root = tmp_path / "runs"
    keep = fake_run(root, "keep")
    gone = fake_run(root, "gone", snapshot=1, model=True)
    outside = fake_run(tmp_path, "outside")
    os.symlink(outside, root / "link")
    for bad in ("", " ", ".", "..", "../outside", "keep/..", "a\\b", "/etc", "x\0y"):
        with pytest.raises(RunsError, match="not a run name"):
            runs.delete_run(root, bad)
    for bad in ("link", "missing"):
        with pytest.raises(RunsError, match="not a run folder"):
            runs.delete_run(root, bad)
    with pytest.raises(RunsError, match="training right now"):
        runs.delete_run(root, "keep", active_dir=str(keep))
    runs.delete_run(root, "gone", active_dir=str(keep))
    assert not gone.exists() and keep.exists() and (outside / "train_config.json").exists()
    assert sorted(p.name for p in root.iterdir()) == ["keep", "link"]


def test_run_config_points_at_the_folder_and_never_resumes(tmp_path):
    folder = fake_run(tmp_path / "moved", "r", output={"save_dir": "/old/place", "save_name": "other"},
                      train={"batch_size": 4, "resume": True})
    config = runs.run_config(folder)
    assert config.run_dir == folder and config.train.batch_size == 4 and config.train.resume is False
    write(folder / "train_config.json", "{broken")
    with pytest.raises(RunsError, match="train_config.json"):
        runs.run_config(folder)


def test_a_run_saved_with_early_stopping_it_could_not_use_still_resumes(tmp_path):
    """early_stopping_patience without evaluations became a config error; a run saved before that (it trained
    without early stopping, with a warning) must still resume from the run list, where its config cannot be
    edited."""
    folder = tmp_path / "runs" / "old"
    write(folder / "train_config.json", json.dumps({"train": {"early_stopping_patience": 3, "eval_every": 0}}))
    config = runs.run_config(folder)
    assert config.train.early_stopping_patience is None and config.run_dir == folder
    write(folder / "train_config.json", json.dumps({"train": {"early_stopping_patience": 3, "eval_every": 5},
                                                    "data": {"eval_split": 0.1}}))
    assert runs.run_config(folder).train.early_stopping_patience == 3  # one it could use stays


# -- model card and export (fake model files) -----------------------------------------------------------------
def test_model_card_is_a_hub_card_with_data_settings_and_before_after(tmp_path):
    from huggingface_hub import ModelCard

    folder = fake_run(tmp_path, "r", model=True, summary={"status": "finished", "steps": 12, "rows": 240,
                                                          "eval_rows": 30, "precision": "bfloat16",
                                                          "pairs_path": "/home/me/secret/pairs.jsonl",
                                                          "hard_negatives_per_row": {"limit": 3, "data_max": 5,
                                                                                     "used_mean": 2.5}})
    runs.save_evaluation(folder, {"pairs": "/home/me/eval.jsonl", "queries": 30,
                                  "before": {"recall@1": 0.25, "ndcg@10": 0.5},
                                  "after": {"recall@1": 0.625, "ndcg@10": 0.75}})
    text = runs.model_card(folder, repo_id="me/my-model")
    card = ModelCard(text)
    assert card.data.library_name == "sentence-transformers"
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert "sentence-transformers" in card.data.tags
    body = card.text
    assert "240 training rows" in body and "Held-out rows for evaluation: 30" in body and "2.5000" in body
    assert "| recall@1 | 0.2500 | 0.6250 | 0.3750 |" in body and "30 queries" in body
    assert "| Batch size | 16 |" in body and "| Temperature | 0.0700 |" in body and "| Precision | bfloat16 |" in body
    assert 'SentenceTransformer("me/my-model")' in body
    assert "Peak learning rate" not in body  # no summary["peak_lr"]: the run trained at optim.lr
    assert "/home/me" not in text  # file names only: a public card does not show the trainer's folders

    local = fake_run(tmp_path, "l", model_id=str(tmp_path / "my-local-model"), model=True, optim={"lr": 5e-5},
                     summary={"final_eval": {"recall@1": 0.5}, "peak_lr": 8e-5})
    (tmp_path / "my-local-model").mkdir()
    card = ModelCard(runs.model_card(local))
    assert card.data.get("base_model") is None and "`my-local-model` (a local model)" in card.text
    assert "| recall@1 | 0.5000 |" in card.text and str(tmp_path) not in card.text
    assert "| Learning rate | 5.00e-05 |" in card.text and "| Peak learning rate (short run) | 8.00e-05 |" in card.text


def test_export_zip_holds_only_the_model_folder_and_a_card(tmp_path):
    folder = fake_run(tmp_path / "runs", "r", model=True, snapshot=3, metrics=[train_row(1)],
                      summary={"status": "finished", "steps": 1})
    write(folder / "eval_pairs.jsonl", '{"anchor": "secret"}\n')
    write(folder / "best_model.pt", b"w")
    write(folder / "notes.txt", "private")
    write(folder / "model.safetensors.tmp", b"partial")
    secret = write(tmp_path / "secret.txt", "do not ship")
    os.symlink(secret, folder / "tokenizer_extra.json")
    os.symlink(secret, folder / "1_Pooling" / "linked.json")
    path = runs.export_zip(folder, tmp_path / "exports")
    assert path == tmp_path / "exports" / "r.zip"
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert names == {f"r/{n}" for n in MODEL_FILES}
        assert "sentence-transformers" in zf.read("r/README.md").decode()
    assert not list((tmp_path / "exports").glob("*.tmp"))
    with pytest.raises(ExportError, match="no saved model"):
        runs.export_zip(fake_run(tmp_path / "runs", "empty"), tmp_path / "exports")


class FakeHub:
    """Stands in for the Hub: records what create_repo and upload_folder were given."""

    def __init__(self, monkeypatch, fail: Exception | None = None):
        from huggingface_hub import HfApi, RepoUrl

        self.calls: list[tuple[str, dict]] = []
        self.uploaded: dict[str, bytes] = {}

        def create_repo(api, repo_id, **kw):
            self.calls.append(("create_repo", {"repo_id": repo_id, **kw}))
            if fail:
                raise fail
            return RepoUrl(f"https://huggingface.co/{repo_id}")

        def upload_folder(api, **kw):
            self.calls.append(("upload_folder", kw))
            root = Path(kw["folder_path"])
            self.uploaded = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}

        monkeypatch.setattr(HfApi, "create_repo", create_repo)
        monkeypatch.setattr(HfApi, "upload_folder", upload_folder)


def all_bytes_under(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def test_push_to_hub_uploads_the_model_and_card_and_never_writes_the_token(tmp_path, monkeypatch):
    folder = fake_run(tmp_path / "ws" / "runs", "r", model=True, snapshot=2)
    write(folder / "eval_pairs.jsonl", '{"anchor": "secret"}\n')
    hub = FakeHub(monkeypatch)
    token = "hf_TESTtoken1234567890abcdef"
    monkeypatch.delenv("HF_TOKEN", raising=False)
    url = runs.push_to_hub(folder, "me/my-model", token=token)
    assert url == "https://huggingface.co/me/my-model"
    (_, create), (_, upload) = hub.calls
    assert create["private"] is True and create["exist_ok"] is True and create["token"] == token
    assert upload["repo_id"] == "me/my-model" and upload["token"] == token
    assert set(hub.uploaded) == MODEL_FILES
    assert b'SentenceTransformer("me/my-model")' in hub.uploaded["README.md"]
    assert not Path(upload["folder_path"]).exists()  # the staging folder is gone
    assert token.encode() not in all_bytes_under(tmp_path)

    # the token from the environment, a public repository
    monkeypatch.setenv("HF_TOKEN", token)
    runs.push_to_hub(folder, "me/public-model", private=False)
    assert hub.calls[-2][1]["private"] is False and hub.calls[-2][1]["token"] == token
    assert token.encode() not in all_bytes_under(tmp_path)


def test_a_hosted_push_never_falls_back_to_the_servers_token(tmp_path, monkeypatch):
    """On a shared app HF_TOKEN is the operator's: a visitor who leaves the token box empty must not push with it
    (create or overwrite any repository the operator may write to). Locally the same call uses it."""
    folder = fake_run(tmp_path / "ws" / "runs", "r", model=True)
    hub = FakeHub(monkeypatch)
    monkeypatch.setenv("HF_TOKEN", "hf_OPERATORsecret123456")
    monkeypatch.setenv("EMBEDGUI_HOSTED", "1")
    with pytest.raises(ExportError, match="type a token with write access .this shared app never uses"):
        runs.push_to_hub(folder, "operator/existing-model")
    assert hub.calls == []
    runs.push_to_hub(folder, "visitor/model", token="hf_VISITORtoken123456")  # a typed token works
    assert {call[1]["token"] for call in hub.calls} == {"hf_VISITORtoken123456"}
    monkeypatch.setenv("EMBEDGUI_HOSTED", "")
    runs.push_to_hub(folder, "me/model")
    assert hub.calls[-1][1]["token"] == "hf_OPERATORsecret123456"


def test_push_to_hub_failures_are_one_sentence_without_the_token(tmp_path, monkeypatch):
    folder = fake_run(tmp_path, "r", model=True)
    token = "hf_SECRETsecret0987654321"
    monkeypatch.delenv("HF_TOKEN", raising=False)
    FakeHub(monkeypatch)
    with pytest.raises(ExportError, match="No Hugging Face token"):
        runs.push_to_hub(folder, "me/model")
    with pytest.raises(ExportError, match="not a valid repository name"):
        runs.push_to_hub(folder, "me/bad name!", token=token)
    with pytest.raises(ExportError, match="no saved model"):
        runs.push_to_hub(fake_run(tmp_path, "empty"), "me/model", token=token)
    FakeHub(monkeypatch, fail=RuntimeError(f"401 Unauthorized\nInvalid credentials in Authorization header "
                                           f"'Bearer {token}'"))
    with pytest.raises(ExportError) as e:
        runs.push_to_hub(folder, "me/model", token=token)
    message = str(e.value)
    assert "401 Unauthorized" in message and token not in message and "\n" not in message
    assert e.value.__cause__ is None and e.value.__suppress_context__  # the original (with the token) is dropped


# -- real tiny runs -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tiny_bert, tmp_path_factory):
    """A finished 4-step run of the tiny BERT with a held-out split, trained once for this module."""
    from embedgui.engine.trainer import Trainer

    tmp = tmp_path_factory.mktemp("trained")
    config = make_config(tiny_bert, tmp, train={"steps_per_epoch": 4, "eval_every": 2},
                         data={"eval_split": 0.25}, output={"save_dir": str(tmp / "runs"), "save_name": "r1"})
    Trainer(config).fit(threading.Event())
    return config.run_dir


@pytest.mark.slow
def test_a_real_run_is_listed_and_exported_as_a_zip_that_loads(trained_run, tmp_path):
    import torch
    from sentence_transformers import SentenceTransformer

    (info,) = runs.list_runs(trained_run.parent)
    assert info.status == "finished" and info.step == info.max_steps == 4 and info.has_model and not info.resumable
    held_out = len((trained_run / "eval_pairs.jsonl").read_text().splitlines())
    assert 0 < held_out < 40 and info.rows == 40 - held_out and set(info.final_eval) >= {"recall@1", "ndcg@10"}
    logs, evals = runs.load_history(trained_run)
    assert [r["step"] for r in logs] == [1, 2, 3, 4] and [r["step"] for r in evals] == [2, 4]

    path = runs.export_zip(trained_run, tmp_path / "exports")
    with zipfile.ZipFile(path) as zf:
        names = {n.split("/", 1)[1] for n in zf.namelist()}
        zf.extractall(tmp_path / "unzipped")
    assert {"config.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json", "README.md",
            "model.safetensors", "tokenizer.json"} <= names
    assert not any(n.startswith("checkpoints") or n.endswith((".pt", ".jsonl")) or "metrics" in n
                   or n == "train_config.json" for n in names)
    texts = ["the model learns a vector", "search query document"]
    exported = SentenceTransformer(str(tmp_path / "unzipped" / trained_run.name), device="cpu")
    original = SentenceTransformer(str(trained_run), device="cpu")
    assert torch.allclose(torch.tensor(exported.encode(texts)), torch.tensor(original.encode(texts)), atol=1e-6)


@pytest.mark.slow
def test_a_real_run_pushed_to_a_fake_hub_leaves_no_token_behind(trained_run, monkeypatch):
    hub = FakeHub(monkeypatch)
    token = "hf_REALRUNtoken55555"
    monkeypatch.setenv("HF_TOKEN", token)
    assert runs.push_to_hub(trained_run, "me/tiny") == "https://huggingface.co/me/tiny"
    assert {"model.safetensors", "modules.json", "README.md", "1_Pooling/config.json"} <= set(hub.uploaded)
    assert not any(n.startswith("checkpoints") or n.endswith((".pt", ".jsonl")) for n in hub.uploaded)
    card = hub.uploaded["README.md"].decode()
    held_out = len((trained_run / "eval_pairs.jsonl").read_text().splitlines())
    assert f"{40 - held_out} training rows" in card and "recall@1" in card
    assert token.encode() not in all_bytes_under(trained_run.parent.parent)
