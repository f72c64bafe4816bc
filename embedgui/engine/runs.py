"""Every run is kept: one folder per Start under the runs folder, listed, compared, deleted, exported and shared.

A run folder is what the trainer writes (train_config.json, metrics.jsonl, metrics_summary.json, checkpoints/,
the saved model) plus evaluation.json from the Evaluate tab and run_error.json when the run failed in the app.
Everything here reads those files; nothing needs the run's process.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .callbacks import read_metrics
from .config import EVAL_METRICS, Config, ConfigError, config_from_dict
from .files import SaveError, atomic_path, atomic_write_text
from .trainer import CONFIG_NAME, METRICS_NAME, SUMMARY_NAME, latest_snapshot

PROCESS_LOG_NAME = "train.log"  # what a run's training process printed (runner.py), kept in its folder

EVALUATION_NAME = "evaluation.json"  # the Evaluate tab's before/after table for this run
ERROR_NAME = "run_error.json"  # why the run failed, written by the runner (a crash or a kill leaves none)
_NAME_TIME = re.compile(r"^(\d{8}-\d{6})-")


class RunsError(RuntimeError):
    """A run folder cannot be listed, deleted or read as asked; the message says which and what to do."""


@dataclass
class RunInfo:
    """One run folder as plain data, for the run list."""

    name: str
    path: str
    status: str  # running | stopped | finished | failed | incomplete
    step: int
    max_steps: int
    created: float  # epoch seconds
    model_id: str
    pairs_path: str
    rows: int | None
    settings: dict[str, Any] = field(default_factory=dict)  # batch_size, epochs, lr, max_length, temperature, ...
    final_eval: dict[str, float] = field(default_factory=dict)
    has_model: bool = False
    resumable: bool = False
    message: str = ""  # why it failed, when it did


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file, or {} when it is missing, torn or not an object (a listing never fails)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _slug(text: str) -> str:
    """A folder-safe piece of a name: letters, digits, dot, dash, underscore; never starting with a dot."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return slug[:40].strip("-.") or "model"


def new_run_name(config: Config, runs_dir: str | os.PathLike, now: float | None = None) -> str:
    """A readable, unique folder name: "20261125-143210-all-MiniLM-L6-v2" (-2, -3... when taken)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    model = Path(str(config.model_id).rstrip("/\\")).name
    base = f"{stamp}-{_slug(model)}"
    name, n = base, 2
    while (Path(runs_dir) / name).exists():
        name, n = f"{base}-{n}", n + 1
    return name


def load_history(run_dir: str | os.PathLike, up_to_step: int | None = None) -> tuple[list[dict], list[dict]]:
    """(train rows, eval rows) of metrics.jsonl, shaped as RunSnapshot.logs and .evals, so charts draw either."""
    logs, evals = [], []
    for row in read_metrics(Path(run_dir) / METRICS_NAME):
        step = row.get("step")
        if not isinstance(step, int) or (up_to_step is not None and step > up_to_step):
            continue
        if row.get("kind") == "train":
            logs.append({k: v for k, v in row.items() if k not in ("kind", "time")})
        elif row.get("kind") == "eval":
            evals.append({k: v for k, v in row.items() if k not in ("kind", "time", "epoch")})
    return logs, evals


def _metrics_only(row: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in row.items()
            if k not in ("step", "epoch", "kind", "time") and isinstance(v, (int, float)) and not isinstance(v, bool)}


def final_metrics(run_dir: str | os.PathLike) -> tuple[dict[str, float], str]:
    """The run's final eval metrics and where they come from: the Evaluate tab, the summary or the last eval row."""
    run_dir = Path(run_dir)
    after = read_json(run_dir / EVALUATION_NAME).get("after")
    if isinstance(after, dict) and after:
        return _metrics_only(after), "evaluation"
    final = read_json(run_dir / SUMMARY_NAME).get("final_eval")
    if isinstance(final, dict) and final:
        return _metrics_only(final), "training"
    _, evals = load_history(run_dir)
    return (_metrics_only(evals[-1]), "training") if evals else ({}, "")


def _created(path: Path) -> float:
    match = _NAME_TIME.match(path.name)
    if match:
        try:
            return time.mktime(time.strptime(match.group(1), "%Y%m%d-%H%M%S"))
        except ValueError:
            pass
    try:
        return (path / CONFIG_NAME).stat().st_mtime
    except OSError:
        return 0.0


def _same(a: str | os.PathLike | None, b: str | os.PathLike | None) -> bool:
    if not a or not b:
        return False
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def log_tail(run_dir: str | os.PathLike, lines: int = 200) -> list[str]:
    """The last lines of a run's own log (train.log, written when it trained in a process of its own), without its
    per-step rows (the charts show those); [] when there is none."""
    try:
        text = (Path(run_dir) / PROCESS_LOG_NAME).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    kept = [line for line in text.replace("\r", "\n").splitlines() if line.strip() and not line.startswith("step ")]
    return kept[-lines:]


def run_info(run_dir: str | os.PathLike, active_dir: str | os.PathLike | None = None) -> RunInfo | None:
    """What the run list shows for one folder; None when it holds no train_config.json."""
    path = Path(run_dir)
    raw = read_json(path / CONFIG_NAME)
    if not raw:
        return None
    summary = read_json(path / SUMMARY_NAME)
    error = read_json(path / ERROR_NAME)
    train, optim = raw.get("train") or {}, raw.get("optim") or {}
    logs, evals = load_history(path)
    snapshot = latest_snapshot(path)
    snapshot_step = int(snapshot.name.split("-")[-1]) if snapshot and snapshot.name.split("-")[-1].isdigit() else 0
    metric_step = max([r["step"] for r in logs + evals], default=0)
    step = max(int(summary.get("steps") or 0), metric_step, snapshot_step)
    max_steps = int(summary.get("max_steps") or 0)
    if not max_steps and train.get("steps_per_epoch") and train.get("epochs"):
        max_steps = int(train["steps_per_epoch"]) * int(train["epochs"])
    if _same(path, active_dir):
        status = "running"
    elif error:
        status = "failed"
    elif summary.get("status") in ("finished", "stopped") and step <= int(summary.get("steps") or 0):
        status = summary["status"]
    else:  # killed, crashed, or still being written by another process: the files stop somewhere
        status = "incomplete"
    final_eval, _ = final_metrics(path)
    return RunInfo(
        name=path.name, path=str(path), status=status, step=step, max_steps=max_steps, created=_created(path),
        model_id=str(raw.get("model_id") or ""),
        pairs_path=str(summary.get("pairs_path") or (raw.get("data") or {}).get("pairs_path") or ""),
        rows=summary.get("rows") if isinstance(summary.get("rows"), int) else None,
        settings={"batch_size": train.get("batch_size"), "epochs": train.get("epochs"), "lr": optim.get("lr"),
                  "max_length": train.get("max_length"), "temperature": train.get("temperature"),
                  "precision": summary.get("precision") or raw.get("dtype"), "peak_lr": _raised(summary, optim)},
        final_eval=final_eval, has_model=(path / "modules.json").is_file() and (path / "config.json").is_file(),
        resumable=snapshot is not None and status not in ("finished", "running"),
        message=str(error.get("message") or ""),
    )


def list_runs(runs_dir: str | os.PathLike, active_dir: str | os.PathLike | None = None) -> list[RunInfo]:
    """Every run folder under runs_dir, newest first; folders without train_config.json are skipped."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    infos = [info for p in root.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
             and (info := run_info(p, active_dir)) is not None]
    return sorted(infos, key=lambda i: (i.created, i.name), reverse=True)


def run_folder(runs_dir: str | os.PathLike, name: str) -> Path:
    """runs_dir/name for a name the user picked; refuses anything that could point outside runs_dir."""
    text = str(name or "")
    if (not text.strip() or text in (".", "..") or any(c in text for c in "/\\\0")
            or (os.altsep and os.altsep in text)):
        raise RunsError(f"{json.dumps(text)} is not a run name; pick a run from the list.")
    folder = Path(runs_dir) / text
    if not folder.is_dir() or folder.is_symlink() or not (folder / CONFIG_NAME).is_file():
        raise RunsError(f"{text} is not a run folder in {runs_dir}; refresh the run list.")
    return folder


def run_config(run_dir: str | os.PathLike) -> Config:
    """The config a run trained with, pointed at its own folder: what Resume starts again."""
    path = Path(run_dir)
    raw = read_json(path / CONFIG_NAME)
    if not raw:
        raise RunsError(f"{path / CONFIG_NAME} is missing or not valid JSON; this run cannot be resumed.")
    train, data = raw.get("train") or {}, raw.get("data") or {}
    if train.get("early_stopping_patience") and not ((data.get("eval_path") or data.get("eval_split"))
                                                    and train.get("eval_every")):
        # saved before this was a config error: the run trained without early stopping, and resumes so
        train["early_stopping_patience"] = None
    try:
        config = config_from_dict(raw, str(path / CONFIG_NAME))
    except ConfigError as e:
        raise RunsError(str(e).replace("\n", " ")) from None
    # The folder may have been moved or renamed since: resume writes where the run is now.
    config.output.save_dir, config.output.save_name = str(path.parent), path.name
    config.train.resume = False
    return config


def delete_run(runs_dir: str | os.PathLike, name: str, active_dir: str | os.PathLike | None = None) -> None:
    """Delete one run folder inside runs_dir; refuses names with / or .., other folders and the running run."""
    folder = run_folder(runs_dir, name)
    if folder.resolve().parent != Path(runs_dir).resolve():
        raise RunsError(f"{name} is not inside {runs_dir}; nothing was deleted.")
    if _same(folder, active_dir):
        raise RunsError(f"{name} is training right now; stop it first, then delete it.")
    try:
        shutil.rmtree(folder)
    except OSError as e:
        raise RunsError(f"Could not delete {folder} ({e}); check its permissions and try again.") from e


def compare_runs(a_dir: str | os.PathLike, b_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The two runs' final eval metrics side by side: [{"metric", "a", "b", "delta" (b - a)}], known metrics first."""
    a, _ = final_metrics(a_dir)
    b, _ = final_metrics(b_dir)
    names = [m for m in EVAL_METRICS if m in a or m in b] + sorted((set(a) | set(b)) - set(EVAL_METRICS))
    rows = []
    for m in names:
        va, vb = a.get(m), b.get(m)
        rows.append({"metric": m, "a": va, "b": vb, "delta": None if va is None or vb is None else vb - va})
    return rows


def save_evaluation(run_dir: str | os.PathLike, result: dict[str, Any]) -> None:
    """Keep the Evaluate tab's before/after table as evaluation.json in the run folder."""
    path = Path(run_dir)
    if not (path / CONFIG_NAME).is_file():
        raise RunsError(f"{path} is not a run folder; evaluation results are kept only for runs.")
    data = {**result, "pairs": str(result.get("pairs") or ""), "queries": result.get("queries"),
            "before": dict(result.get("before") or {}), "after": dict(result.get("after") or {}), "time": time.time()}
    atomic_write_text(path / EVALUATION_NAME, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def record_error(run_dir: str | os.PathLike, message: str, step: int) -> None:
    """Note why a run failed, so the run list says so after a restart (no-op when the folder is gone)."""
    path = Path(run_dir)
    if path.is_dir():
        atomic_write_text(path / ERROR_NAME, json.dumps({"message": message, "step": step, "time": time.time()},
                                                        ensure_ascii=False) + "\n")


def clear_error(run_dir: str | os.PathLike) -> None:
    (Path(run_dir) / ERROR_NAME).unlink(missing_ok=True)



# -- export: the model folder as a zip, or pushed to the Hugging Face Hub, with a model card -------------------
class ExportError(RunsError):
    """A run could not be exported or pushed; the message is one sentence saying what to do."""


# Files of a saved model, by pattern; anything else in the run folder (configs, data rows, snapshots, metrics,
# stray files) stays out, so an export never leaks the training data.
_MODEL_FILES = ("config.json", "config_sentence_transformers.json", "modules.json", "sentence_bert_config.json",
                "generation_config.json", "*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin",
                "adapter_config.json", "tokenizer*", "vocab*", "merges.txt", "*.model", "special_tokens_map.json",
                "added_tokens.json", "chat_template*", "*.tiktoken")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _model_files(run_dir: Path) -> list[tuple[Path, str]]:
    """(file, path inside the model folder) for every file the exported model needs; links are never followed."""
    if not ((run_dir / "modules.json").is_file() and (run_dir / "config.json").is_file()):
        raise ExportError(f"{run_dir} holds no saved model yet; export a run after it has stopped or finished.")
    config = read_json(run_dir / "config.json")
    patterns = _MODEL_FILES + (("*.py",) if config.get("auto_map") else ())  # custom model code it needs to load
    files = [(p, p.name) for p in sorted(run_dir.iterdir())
             if p.is_file() and not p.is_symlink() and any(p.match(pat) for pat in patterns)]
    try:
        modules = json.loads((run_dir / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ExportError(f"{run_dir / 'modules.json'} cannot be read ({e}); train or resume the run again.") from e
    for module in modules if isinstance(modules, list) else []:
        sub = str(module.get("path") or "") if isinstance(module, dict) else ""
        folder = run_dir / sub
        if not sub or sub.startswith(".") or "/" in sub or "\\" in sub or not folder.is_dir() or folder.is_symlink():
            continue
        for top, _dirs, names in os.walk(folder):  # followlinks=False: a linked folder is never entered
            for n in sorted(names):
                p = Path(top) / n
                if p.is_file() and not p.is_symlink():
                    files.append((p, p.relative_to(run_dir).as_posix()))
    return files


def _hub_id(model_id: str) -> str | None:
    """model_id when it names a Hub model (owner/name), None for a local folder."""
    text = model_id.strip()
    if not _HUB_ID.match(text) or Path(text).expanduser().exists():
        return None
    return text


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return "–" if value is None else str(value)


def _raised(summary: dict[str, Any], optim: dict[str, Any]) -> float | None:
    """The peak rate a short run trained at (optim.short_run_steps), where it differs from optim.lr; else None."""
    peak, lr = summary.get("peak_lr"), optim.get("lr")
    return peak if isinstance(peak, float) and isinstance(lr, (int, float)) and peak > lr * 1.0001 else None


def model_card(run_dir: str | os.PathLike, repo_id: str | None = None) -> str:
    """README.md for the exported model: Hub metadata, base model, data size, settings, before/after metrics."""
    path = Path(run_dir)
    raw, summary = read_json(path / CONFIG_NAME), read_json(path / SUMMARY_NAME)
    evaluation = read_json(path / EVALUATION_NAME)
    train, optim, data = raw.get("train") or {}, raw.get("optim") or {}, raw.get("data") or {}
    model_id = str(raw.get("model_id") or "unknown")
    base = _hub_id(model_id)
    meta = ["---", "library_name: sentence-transformers", "pipeline_tag: sentence-similarity", "tags:",
            *[f"- {t}" for t in ("sentence-transformers", "sentence-similarity", "feature-extraction", "embedgui",
                                 "infonce")]]
    if base:
        meta.append(f"base_model: {json.dumps(base)}")
    meta.append("---")
    base_text = f"[{base}](https://huggingface.co/{base})" if base else f"`{Path(model_id).name}` (a local model)"
    pairs = Path(str(summary.get("pairs_path") or data.get("pairs_path") or "")).name or "unknown"
    rows = summary.get("rows")
    lines = [*meta, "", f"# {repo_id.split('/')[-1] if repo_id else path.name}", "",
             f"A sentence-embedding model fine-tuned from {base_text} with InfoNCE (in-batch and hard negatives) "
             "with embedgui. It maps text to a vector for semantic search and retrieval.",
             "", "## Training data", "",
             f"- Pairs file: `{pairs}`, {rows if isinstance(rows, int) else 'unknown number of'} training rows "
             f"(anchor, positive, hard negatives)"]
    if summary.get("eval_rows"):
        lines.append(f"- Held-out rows for evaluation: {summary['eval_rows']}")
    negatives = summary.get("hard_negatives_per_row")
    if isinstance(negatives, dict) and negatives.get("used_mean") is not None:
        lines.append(f"- Hard negatives used per row: {_fmt(float(negatives['used_mean']))} on average "
                     f"(limit {_fmt(negatives.get('limit'))})")
    settings = [("Base model", model_id if base else Path(model_id).name), ("Pooling", raw.get("pooling")),
                ("Normalize", raw.get("normalize")), ("Batch size", train.get("batch_size")),
                ("Epochs", train.get("epochs")), ("Steps", summary.get("steps")),
                ("Max length", train.get("max_length")), ("Temperature", train.get("temperature")),
                ("Learning rate", optim.get("lr")), ("Peak learning rate (short run)", _raised(summary, optim)),
                ("Optimizer", optim.get("name")),
                ("Scheduler", optim.get("scheduler")), ("Warmup ratio", optim.get("warmup_ratio")),
                ("Precision", summary.get("precision") or raw.get("dtype")), ("Seed", raw.get("seed"))]
    lines += ["", "## Settings", "", "| Setting | Value |", "|---|---|",
              *[f"| {k} | {_fmt(v)} |" for k, v in settings if v is not None]]
    before, after = evaluation.get("before") or {}, evaluation.get("after") or {}
    if after:
        where = Path(str(evaluation.get("pairs") or "")).name or "an evaluation file"
        lines += ["", "## Evaluation", "", f"Retrieval on `{where}` ({evaluation.get('queries', '?')} queries), "
                  "before and after fine-tuning:", "", "| Metric | Before | After | Change |", "|---|---|---|---|"]
        for m, v in _metrics_only(after).items():
            b = before.get(m)
            delta = _fmt(v - b) if isinstance(b, (int, float)) else "–"
            lines.append(f"| {m} | {_fmt(b)} | {_fmt(v)} | {delta} |")
    else:
        final, _ = final_metrics(path)
        if final:
            lines += ["", "## Evaluation", "", "Retrieval on the held-out rows at the end of training (the base "
                      "model was not scored on them):", "", "| Metric | After |", "|---|---|",
                      *[f"| {m} | {_fmt(v)} |" for m, v in final.items()]]
    name = repo_id or path.name
    lines += ["", "## Usage", "", "```python", "from sentence_transformers import SentenceTransformer", "",
              f"model = SentenceTransformer({json.dumps(name)})",
              'embeddings = model.encode(["a query", "a document"])', "```", ""]
    return "\n".join(lines)


def export_zip(run_dir: str | os.PathLike, dest_dir: str | os.PathLike) -> Path:
    """dest_dir/<run name>.zip holding <run name>/ (the sentence-transformers model folder) with a README.md card."""
    import zipfile

    run_dir = Path(run_dir)
    files = _model_files(run_dir)
    dest = Path(dest_dir) / f"{run_dir.name}.zip"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dest) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for src, arc in files:
                zf.write(src, f"{run_dir.name}/{arc}")
            zf.writestr(f"{run_dir.name}/README.md", model_card(run_dir))
    except OSError as e:
        raise ExportError(str(e) if isinstance(e, SaveError) else
                          f"Could not write {dest} ({e}); check the folder and free space, then try again.") from e
    return dest


def push_to_hub(run_dir: str | os.PathLike, repo_id: str, token: str | None = None, private: bool = True) -> str:
    """Create (or reuse) the Hub repository and upload the model folder with its card; returns the repo URL.

    The token comes from the argument or HF_TOKEN and is only handed to huggingface_hub; it is never written. A
    hosted app never falls back to HF_TOKEN: that is the operator's token, and a visitor would push with its rights.
    """
    import tempfile

    from .hosted import is_hosted

    run_dir = Path(run_dir)
    repo_id = (repo_id or "").strip()
    hosted = is_hosted()
    token = (token or "").strip() or ("" if hosted else os.environ.get("HF_TOKEN", "").strip())
    try:
        from huggingface_hub import HfApi
        from huggingface_hub.utils import validate_repo_id

        validate_repo_id(repo_id)
    except ImportError as e:
        raise ExportError("huggingface_hub is not installed; run `pip install huggingface_hub`.") from e
    except Exception:  # HFValidationError: the message lists rules, one sentence is clearer
        raise ExportError(f"{json.dumps(repo_id)} is not a valid repository name; use your-name/model-name (letters, "
                          "digits, - _ . only).") from None
    if not token:
        raise ExportError("No Hugging Face token: type a token with write access (this shared app never uses a "
                          "token of its own)." if hosted else "No Hugging Face token: type a token with write "
                          "access, or set HF_TOKEN before starting the app.")
    files = _model_files(run_dir)
    with tempfile.TemporaryDirectory(prefix="embedgui-push-") as stage:
        root = Path(stage)
        for src, rel in files:
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, target)  # no copy of the weights where the disk allows it
            except OSError:
                shutil.copy2(src, target)
        (root / "README.md").write_text(model_card(run_dir, repo_id), encoding="utf-8")
        try:
            api = HfApi(token=token)
            url = api.create_repo(repo_id, token=token, private=private, exist_ok=True)
            api.upload_folder(repo_id=getattr(url, "repo_id", None) or repo_id, folder_path=root, token=token,
                              repo_type="model", commit_message=f"Upload {run_dir.name} (trained with embedgui)")
        except Exception as e:
            reason = " ".join(str(e).replace(token, "***").split())[:300] or type(e).__name__
            raise ExportError(f"Could not push to the Hugging Face Hub as {repo_id} ({reason}); check the "
                              "repository name, that the token has write access, and the network, then try again."
                              ) from None
    return str(url)
