"""Plotly figures from a run's plain history (pure functions: easy to test, cheap to redraw)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

MAX_POINTS = 1500  # per line: a long run's chart stays light to redraw every second

LAYOUT = {"height": 280, "margin": {"l": 50, "r": 20, "t": 40, "b": 40}, "template": "plotly_white",
          "legend": {"orientation": "h", "y": -0.25}}


def ema(values: Sequence[float], alpha: float = 0.1) -> list[float]:
    """Exponential moving average (the smoothed loss line); alpha is the weight of the newest value."""
    out: list[float] = []
    for v in values:
        out.append(v if not out else alpha * v + (1 - alpha) * out[-1])
    return out


def line_figure(rows: Sequence[dict[str, Any]], keys: Sequence[str], title: str, y_title: str = "",
                y_range: tuple[float, float] | None = None, x_title: str = "step",
                smooth_name: str | None = None) -> go.Figure:
    """One line per key over `step`; rows without the key are skipped; smooth_name adds an EMA of the first key."""
    fig = go.Figure()
    for i, key in enumerate(keys):
        points = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        if len(points) > MAX_POINTS:  # keep every n-th point and always the latest one
            stride = -(-len(points) // MAX_POINTS)
            points = points[::stride] + ([points[-1]] if (len(points) - 1) % stride else [])
        fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers",
                                 name=key, marker={"size": 4}))
        if smooth_name and i == 0 and points:
            ys = ema([r[key] for r in rows if r.get(key) is not None])
            steps = [r["step"] for r in rows if r.get(key) is not None]
            keep = {p[0] for p in points}
            pairs = [(x, y) for x, y in zip(steps, ys) if x in keep]
            fig.add_trace(go.Scatter(x=[p[0] for p in pairs], y=[p[1] for p in pairs], mode="lines",
                                     name=smooth_name, line={"width": 3}))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, **LAYOUT)
    if y_range:
        fig.update_yaxes(range=list(y_range))
    return fig


def training_figures(logs: Sequence[dict[str, Any]], evals: Sequence[dict[str, Any]],
                     titles: dict[str, str]) -> tuple[go.Figure, go.Figure, go.Figure, go.Figure]:
    """Loss, in-batch accuracy, learning rate and eval metrics by step.

    titles holds loss/acc/lr/eval, and optionally step (the x axis) and smoothed (name of the EMA loss line; no
    line when absent).
    """
    eval_keys = [k for k in ("recall@1", "recall@5", "mrr@10", "ndcg@10") if any(k in r for r in evals)]
    x = titles.get("step", "step")
    return (
        line_figure(logs, ["loss"], titles["loss"], x_title=x, smooth_name=titles.get("smoothed")),
        line_figure(logs, ["acc"], titles["acc"], y_range=(0, 1.02), x_title=x),
        line_figure(logs, ["lr"], titles["lr"], x_title=x),
        line_figure(evals, eval_keys, titles["eval"], y_range=(0, 1.02), x_title=x),
    )


def compare_figure(before: dict[str, float] | None, after: dict[str, float], metrics: Sequence[str],
                   title: str, names: tuple[str, str] = ("base", "fine-tuned")) -> go.Figure:
    """Grouped bars: each metric before and after fine-tuning."""
    fig = go.Figure()
    if before:
        fig.add_trace(go.Bar(x=list(metrics), y=[before.get(m, 0.0) for m in metrics], name=names[0]))
    fig.add_trace(go.Bar(x=list(metrics), y=[after.get(m, 0.0) for m in metrics], name=names[1]))
    fig.update_layout(title=title, barmode="group", yaxis={"range": [0, 1.02]}, **LAYOUT)
    return fig
