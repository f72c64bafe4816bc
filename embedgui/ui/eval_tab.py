"""Evaluate tab: score a trained model and a base model on a pairs file; metrics table and before/after bars."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from ..engine.evaluate import compare, evaluate_model
from ..engine.runner import USER_ERRORS
from .charts import compare_figure
from .i18n import t

METRICS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")


def evaluate_rows(model: str, base: str, pairs: str, lang: str):
    """(table, figure, message) for the tab; errors become a one-line message and an empty table."""
    model, base, pairs = (model or "").strip(), (base or "").strip(), (pairs or "").strip()
    if not model or not pairs:
        return pd.DataFrame(), None, "❌ " + ("모델과 pairs 파일을 고르세요." if lang == "ko" else
                                              "Choose a model and a pairs file.")
    try:
        if base:
            result = compare(model, base, pairs)
            before, after = result.before.metrics, result.after.metrics
            n = result.after
        else:
            n = evaluate_model(model, pairs)
            before, after = None, n.metrics
    except USER_ERRORS + (OSError, ValueError) as e:
        return pd.DataFrame(), None, f"❌ {e}"
    names = [m for m in METRICS if m in after]
    if before:
        table = pd.DataFrame({"metric": names, "base": [round(before[m], 4) for m in names],
                              "fine-tuned": [round(after[m], 4) for m in names],
                              "delta": [f"{after[m] - before[m]:+.4f}" for m in names]})
    else:
        table = pd.DataFrame({"metric": names, "fine-tuned": [round(after[m], 4) for m in names]})
    names_pair = ("기본 모델", "파인튜닝") if lang == "ko" else ("base", "fine-tuned")
    figure = compare_figure(before, after, names, t(lang, "eval.chart"), names_pair)
    message = f"✅ {n.queries} queries, {n.corpus} corpus texts, {n.seconds:.1f} s"
    return table, figure, message


class EvalTab:
    def __init__(self, lang: str, models: list[str], base: str, pairs: str):
        with gr.Row():
            self.model = gr.Dropdown(models, value=models[0] if models else None, allow_custom_value=True,
                                     label=t(lang, "eval.model"), elem_id="eval-model", scale=3)
            self.refresh = gr.Button(t(lang, "eval.refresh"), scale=1)
        with gr.Row():
            self.base = gr.Textbox(base, label=t(lang, "eval.base"), elem_id="eval-base")
            self.pairs = gr.Textbox(pairs, label=t(lang, "eval.pairs"), elem_id="eval-pairs")
        self.run_btn = gr.Button(t(lang, "eval.run"), variant="primary", elem_id="eval-run")
        self.message = gr.Markdown(elem_id="eval-message")
        with gr.Row():
            self.table = gr.Dataframe(label=t(lang, "eval.table"), interactive=False, elem_id="eval-table")
            self.chart = gr.Plot(elem_id="eval-chart", show_label=False)
