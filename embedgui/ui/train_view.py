"""What the Train tab draws, as pure functions of a run's snapshot and the run list: the progress line, the message,
the charts' titles, the run table, and a hosted page's view of another visitor's paths."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pandas as pd

from ..engine import runs
from ..engine.callbacks import PHASES
from ..engine.runner import RunSnapshot
from .base import note
from .engine_text import engine_text
from .i18n import t

SPEED_WINDOW = 20  # log rows the ETA's speed is averaged over (one noisy step does not swing it)



def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def status_word(status: str, lang: str) -> str:
    return t(lang, f"status.{status}") if f"status.{status}" in _STATUS_KEYS else status


_STATUS_KEYS = {f"status.{s}" for s in ("idle", "starting", "running", "stopping", "stopped", "finished", "failed",
                                        "incomplete")}


def smoothed_speed(logs: list[dict[str, Any]]) -> float | None:
    """Steps per second over the last SPEED_WINDOW log rows (from their elapsed times), else their mean speed."""
    window = logs[-SPEED_WINDOW:]
    if len(window) >= 2 and window[-1].get("elapsed_s") is not None and window[0].get("elapsed_s") is not None:
        seconds = window[-1]["elapsed_s"] - window[0]["elapsed_s"]
        if seconds > 0 and window[-1]["step"] > window[0]["step"]:
            return (window[-1]["step"] - window[0]["step"]) / seconds
    speeds = [r["steps_per_s"] for r in window if r.get("steps_per_s")]
    return sum(speeds) / len(speeds) if speeds else None


def progress_html(snap: RunSnapshot, lang: str, now: float | None = None) -> str:
    """Progress bar with step, epoch, speed, ETA and precision, as HTML (a pure function of the snapshot)."""
    now = now or time.time()
    share = snap.step / snap.max_steps if snap.max_steps else 0.0
    last = snap.logs[-1] if snap.logs else {}
    speed = smoothed_speed(snap.logs)
    parts = [f"<b>{status_word(snap.status, lang)}</b>",
             f"{t(lang, 'progress.step')} {snap.step}/{snap.max_steps}" if snap.max_steps else "",
             f"{t(lang, 'progress.epoch')} {snap.epoch}/{snap.epochs}" if snap.epochs and snap.max_steps else ""]
    if speed:
        parts.append(f"{speed:.2f} it/s")
        if snap.active and snap.max_steps:
            parts.append(f"{t(lang, 'progress.eta')} {_duration((snap.max_steps - snap.step) / speed)}")
    if snap.started_at and snap.status != "idle":
        # a run that ended keeps the time it took (its last log row), not a clock that keeps counting
        elapsed = now - snap.started_at if snap.active else last.get("elapsed_s")
        if elapsed is not None:
            parts.append(f"{t(lang, 'progress.elapsed')} {_duration(elapsed)}")
    if snap.device:
        parts.append(f"{snap.device} · {snap.precision}")
    if last:
        # the rate this step trained at: the schedule's, a short run's raised peak included (optim.short_run_steps)
        rate = f" · lr {last['lr']:.1e}" if isinstance(last.get("lr"), (int, float)) else ""
        parts.append(f"loss {last['loss']:.4f} · acc {last['acc']:.3f}{rate}")
    color = {"failed": "#d9534f", "finished": "#2e8b57", "stopped": "#c68a00"}.get(snap.status, "#3b82f6")
    why = _escape(engine_text(snap.precision_reason, lang))
    reason = (f'<div id="train-precision" style="margin-top:4px;font-size:0.9em;color:#6b7280">'
              f'{t(lang, "train.precision")}: {snap.precision} — {why}</div>'
              if snap.precision and snap.precision_reason else "")
    return (f'<div id="train-progress" data-status="{snap.status}" data-step="{snap.step}">'
            f'<div style="background:#e5e7eb;border-radius:6px;height:14px;overflow:hidden">'
            f'<div style="width:{share * 100:.1f}%;background:{color};height:14px"></div></div>'
            f'<div style="margin-top:6px">{" · ".join(p for p in parts if p)}</div>{reason}</div>')


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message_markdown(snap: RunSnapshot, lang: str) -> str:
    """One line on what the run is doing, in the UI language; failures keep the engine's exact sentence."""
    if snap.status == "idle":
        return t(lang, "train.idle")
    if snap.status == "failed":
        text = note(lang, "error", snap.message)
    elif snap.status in ("finished", "stopped"):
        text = "**" + t(lang, "train.ended", status=status_word(snap.status, lang), step=snap.step,
                        max_steps=snap.max_steps) + "**"
    elif snap.status == "stopping":
        text = t(lang, "train.stopping")
    elif snap.status == "starting":
        # set-up says what it is doing (reading the data, loading the model, restoring the snapshot)
        text = t(lang, f"phase.{snap.phase}") + "..." if snap.phase in PHASES else t(lang, "train.loading")
    else:
        text = t(lang, "train.training_on", device=snap.device, precision=snap.precision)
        if snap.phase == "eval":
            text += " · " + t(lang, "phase.eval") + "..."
    if snap.status == "failed" and snap.step == 0 and snap.run_dir and not Path(snap.run_dir).exists():
        # a start that failed before its first step leaves no folder (runner._tidy): do not name one
        return text + "\n\n" + t(lang, "train.nothing_kept")
    where = f"\n\n`{snap.run_dir}`" if snap.run_dir else ""
    return text + where


def chart_titles(lang: str, smooth: bool) -> dict[str, str]:
    titles = {k: t(lang, f"chart.{k}") for k in ("loss", "acc", "lr", "eval", "step")}
    if smooth:
        titles["smoothed"] = t(lang, "chart.smoothed")
    return titles


# A path into a visitor's folder of a hosted app (workspace/visitors/<id>/...): its folder and file names are that
# visitor's, so a page watching another visitor's run shows "…" instead. The app names what it saves there with
# these characters only (base.safe_name: an upload's own name may hold spaces).
_VISITOR_PATH = re.compile(r"(?:[A-Za-z]:)?[\w.~/\\-]*[/\\]visitors[/\\](?:[0-9a-f]+|anonymous)(?!\w)"
                           r"(?:[/\\][\w.@+~-]*)*")
# a traceback's source lines name the app's install folder
_TRACEBACK_FILE = re.compile(r'File "[^"\n]*"')


def hide_visitor_paths(text: str) -> str:
    return _TRACEBACK_FILE.sub('File "…"', _VISITOR_PATH.sub("…", text))



# peak_lr: a short run's raised peak (optim.short_run_steps), shown after the lr that was set
SETTING_WORDS = (("batch_size", "batch"), ("epochs", "ep"), ("lr", "lr"), ("peak_lr", "→"), ("max_length", "len"),
                 ("temperature", "τ"), ("precision", ""))


def _setting(value: object) -> str:
    return f"{value:.2g}" if isinstance(value, float) and 0 < abs(value) < 1e-3 else str(value)


def runs_table(infos: list[runs.RunInfo], lang: str) -> pd.DataFrame:
    """The run list as a table: name, status, steps, data, settings, final eval metrics."""
    cols = [t(lang, f"col.{c}") for c in ("name", "status", "steps", "data", "rows", "settings", "metrics")]
    rows = []
    for r in infos:
        s = r.settings
        settings = " · ".join(f"{short} {_setting(s[k])}".strip() for k, short in SETTING_WORDS
                              if s.get(k) is not None)
        settings = settings.replace(" · → ", " → ")  # "lr 5e-05 → 8e-05": the rate set, then the peak it ran at
        metrics = " · ".join(f"{k} {v:.3f}" for k, v in r.final_eval.items() if k in ("recall@1", "ndcg@10"))
        rows.append([r.name, status_word(r.status, lang), f"{r.step}/{r.max_steps}", Path(r.pairs_path or "").name,
                     "" if r.rows is None else r.rows, settings, metrics])
    return pd.DataFrame(rows, columns=cols)
