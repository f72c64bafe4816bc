"""Train tab: Start / Stop / Resume, live charts and progress drawn from the run's snapshot by a timer."""

from __future__ import annotations

import time

import gradio as gr

from ..engine.runner import RunSnapshot
from .charts import training_figures
from .i18n import t

STATUS_WORDS = {
    "idle": ("idle", "대기"), "starting": ("starting", "시작 중"), "running": ("running", "학습 중"),
    "stopping": ("stopping", "중지 중"), "stopped": ("stopped", "중지됨"), "finished": ("finished", "완료"),
    "failed": ("failed", "실패"),
}


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def progress_html(snap: RunSnapshot, lang: str, now: float | None = None) -> str:
    """Progress bar with step, epoch, speed and ETA, as HTML (a pure function of the snapshot)."""
    now = now or time.time()
    share = snap.step / snap.max_steps if snap.max_steps else 0.0
    word = STATUS_WORDS.get(snap.status, (snap.status, snap.status))[1 if lang == "ko" else 0]
    last = snap.logs[-1] if snap.logs else {}
    speed = last.get("steps_per_s")
    parts = [f"<b>{word}</b>", f"step {snap.step}/{snap.max_steps}" if snap.max_steps else "",
             f"epoch {snap.epoch}/{snap.epochs}" if snap.epochs and snap.max_steps else ""]
    if speed:
        parts.append(f"{speed:.2f} it/s")
        if snap.active and snap.max_steps:
            parts.append(f"ETA {_duration((snap.max_steps - snap.step) / speed)}")
    if snap.started_at and snap.status != "idle":
        parts.append(f"{'경과' if lang == 'ko' else 'elapsed'} {_duration(now - snap.started_at)}")
    if snap.device:
        parts.append(f"{snap.device} · {snap.precision}")
    if last:
        parts.append(f"loss {last['loss']:.4f} · acc {last['acc']:.3f}")
    color = {"failed": "#d9534f", "finished": "#2e8b57", "stopped": "#c68a00"}.get(snap.status, "#3b82f6")
    return (f'<div id="train-progress" data-status="{snap.status}" data-step="{snap.step}">'
            f'<div style="background:#e5e7eb;border-radius:6px;height:14px;overflow:hidden">'
            f'<div style="width:{share * 100:.1f}%;background:{color};height:14px"></div></div>'
            f'<div style="margin-top:6px">{" · ".join(p for p in parts if p)}</div></div>')


def message_markdown(snap: RunSnapshot, lang: str) -> str:
    """One line on what the run is doing, in the UI language; failures keep the engine's exact sentence."""
    if snap.status == "idle":
        return t(lang, "train.idle")
    ko = lang == "ko"
    if snap.status == "failed":
        text = f"❌ {snap.message}"
    elif snap.status in ("finished", "stopped"):
        icon = "✅" if snap.status == "finished" else "⏸️"
        text = (f"{icon} {STATUS_WORDS[snap.status][1]}: {snap.step}/{snap.max_steps} 스텝, 모델 저장 위치"
                if ko else f"{icon} {snap.status} at step {snap.step}/{snap.max_steps}; model saved in")
    elif snap.status == "stopping":
        text = f"⏳ {t(lang, 'train.stopping')}"
    elif snap.status == "starting":
        text = "⏳ " + ("모델과 데이터를 불러오는 중..." if ko else "Loading the model and the data...")
    else:
        text = f"⏳ {'학습 중' if ko else 'Training on'} {snap.device} ({snap.precision})"
    where = f"\n\n`{snap.run_dir}`" if snap.run_dir else ""
    return text + where


def tick_outputs(snap: RunSnapshot, lang: str):
    """Everything the timer redraws, from one snapshot: progress, message, four charts, log text."""
    titles = {k: t(lang, f"chart.{k}") for k in ("loss", "acc", "lr", "eval")}
    loss, acc, lr, ev = training_figures(snap.logs, snap.evals, titles)
    return progress_html(snap, lang), message_markdown(snap, lang), loss, acc, lr, ev, "\n".join(snap.log_lines)


class TrainTab:
    def __init__(self, lang: str):
        with gr.Row():
            self.start_btn = gr.Button(t(lang, "train.start"), variant="primary", elem_id="train-start")
            self.stop_btn = gr.Button(t(lang, "train.stop"), variant="stop", elem_id="train-stop")
            self.resume_btn = gr.Button(t(lang, "train.resume"), elem_id="train-resume")
        self.progress = gr.HTML(elem_id="train-progress-box")
        self.message = gr.Markdown(t(lang, "train.idle"), elem_id="train-message")
        with gr.Row():
            self.loss_plot = gr.Plot(elem_id="chart-loss", show_label=False)
            self.acc_plot = gr.Plot(elem_id="chart-acc", show_label=False)
        with gr.Row():
            self.lr_plot = gr.Plot(elem_id="chart-lr", show_label=False)
            self.eval_plot = gr.Plot(elem_id="chart-eval", show_label=False)
        self.log = gr.Textbox(label=t(lang, "train.log"), lines=8, max_lines=8, interactive=False,
                              elem_id="train-log", autoscroll=True)
        self.timer = gr.Timer(1.0)

    @property
    def tick_targets(self) -> list:
        return [self.progress, self.message, self.loss_plot, self.acc_plot, self.lr_plot, self.eval_plot, self.log]
