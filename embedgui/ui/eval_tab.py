"""Evaluate tab: score a trained model and a base model on a pairs file; metrics table and before/after bars.

Honest numbers: a held-out set too small to show a change gets a warning with its size, and scoring a run on the
rows it trained on is labelled as memorisation.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from ..engine import runs
from ..engine.device import side_threads
from ..engine.errors import USER_ERRORS
from ..engine.evaluate import compare, evaluate_model
from ..engine.paths import PathRefused
from ..engine.trainer import CONFIG_NAME, EVAL_SPLIT_NAME
from .base import UI, note
from .charts import compare_figure
from .config_tab import workspace_config
from .i18n import t

METRICS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
MIN_QUERIES = 50  # below this one query moves recall by 2% or more: too coarse to show a change


def _same_file(a: str | None, b: str | None) -> bool:
    try:
        return bool(a and b) and Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except OSError:
        return False


def honesty_notes(model: str, pairs: str, queries: int, lang: str) -> list[str]:
    """Warnings on what the numbers can show: too few queries, or the run's own training rows."""
    out = []
    if queries < MIN_QUERIES:
        out.append(note(lang, "warning", t(lang, "eval.few", n=queries, min=MIN_QUERIES, step=1 / max(queries, 1))))
    folder = Path(model or "")
    if (folder / CONFIG_NAME).is_file():
        try:
            trained_on = runs.run_config(folder).data.pairs_path
        except (runs.RunsError, OSError):
            trained_on = None
        if _same_file(pairs, str(folder / EVAL_SPLIT_NAME)):
            out.append(t(lang, "eval.held_out"))
        elif _same_file(pairs, trained_on):
            out.append(note(lang, "warning", t(lang, "eval.memorised")))
    return out


def evaluate_rows(model: str, base: str, pairs: str, lang: str):
    """(table, figure, message) for the tab; errors become a one-line message and an empty table."""
    model, base, pairs = (model or "").strip(), (base or "").strip(), (pairs or "").strip()
    if not model or not pairs:
        return pd.DataFrame(), None, note(lang, "error", t(lang, "eval.choose"))
    try:
        if base:
            result = compare(model, base, pairs)
            before, after = result.before.metrics, result.after.metrics
            n = result.after
        else:
            n = evaluate_model(model, pairs)
            before, after = None, n.metrics
    except USER_ERRORS + (OSError, ValueError) as e:
        return pd.DataFrame(), None, note(lang, "error", str(e))
    chart_names = [m for m in METRICS if m in after]
    # then each Matryoshka size the model was trained for (recall@1/dim64, ...), largest first, in the table only
    names = chart_names + [m for m in after if "/dim" in m and (not before or m in before)]
    metric, base_col, tuned, delta = (t(lang, f"col.{c}") for c in ("metric", "base", "tuned", "delta"))
    if before:
        table = pd.DataFrame({metric: names, base_col: [round(before[m], 4) for m in names],
                              tuned: [round(after[m], 4) for m in names],
                              delta: [f"{after[m] - before[m]:+.4f}" for m in names]})
    else:
        table = pd.DataFrame({metric: names, tuned: [round(after[m], 4) for m in names]})
    figure = compare_figure(before, after, chart_names, t(lang, "eval.chart"), (base_col, tuned))
    lines = [note(lang, "ok", t(lang, "eval.done", queries=n.queries, corpus=n.corpus, seconds=n.seconds))]
    lines += honesty_notes(model, pairs, n.queries, lang)
    if (Path(model) / CONFIG_NAME).is_file():
        try:
            runs.save_evaluation(model, {"pairs": pairs, "queries": n.queries, "corpus": n.corpus,
                                         "base": base or None, "before": before or {}, "after": after})
            lines.append(t(lang, "eval.saved"))
        except (runs.RunsError, OSError) as e:
            lines.append(note(lang, "warning", str(e)))
    return table, figure, "\n\n".join(lines)


class EvalTab:
    def __init__(self, ui: UI, models: list[str], base: str, pairs: str):
        self.ui, tx = ui, ui.texts
        with gr.Row():
            self.model = tx.make(gr.Dropdown, "eval.model", choices=models, value=models[0] if models else None,
                                 allow_custom_value=True, elem_id="eval-model", scale=3)
            self.refresh = tx.make(gr.Button, "eval.refresh", "value", scale=1, elem_id="eval-refresh")
        with gr.Row():
            self.base = tx.make(gr.Textbox, "eval.base", value=base, elem_id="eval-base")
            self.pairs = tx.make(gr.Textbox, "eval.pairs", value=pairs, elem_id="eval-pairs")
        self.run_btn = tx.make(gr.Button, "eval.run", "value", variant="primary", elem_id="eval-run")
        self.message = gr.Markdown(elem_id="eval-message")
        with gr.Row():
            self.table = tx.make(gr.Dataframe, "eval.table", interactive=False, elem_id="eval-table")
            self.chart = gr.Plot(elem_id="eval-chart", show_label=False)

    def refresh_models(self, pairs: str, owner: str = "", from_config: bool = False) -> dict:
        """The runs that hold a model, newest first; the newest is scored on the rows it held out.

        from_config (a page load): without such rows, the saved config's eval file (else its pairs), not the value
        the page was built with at app start."""
        ctx = self.ui.ctx.visitor(owner)
        found = ctx.trained_models()
        newest = found[0] if found else None
        held_out = Path(newest) / EVAL_SPLIT_NAME if newest else None
        if from_config:
            config = workspace_config(ctx)
            pairs = config.data.eval_path or config.data.pairs_path or pairs
        pairs = str(held_out) if held_out and held_out.exists() else pairs
        se = self.ui.tabs["search"]
        return {self.model: gr.update(choices=found, value=newest), se.model: gr.update(choices=found, value=newest),
                self.pairs: pairs, se.corpus: se.default_corpus(newest, owner)}

    def wire(self) -> None:
        lang, se, owner = self.ui.lang, self.ui.tabs["search"], self.ui.tabs["train"].owner
        self.refresh.click(self.refresh_models, [self.pairs, owner], [self.model, se.model, self.pairs, se.corpus])

        def pairs_for_model(model: str, pairs: str, owner: str):
            try:  # only a folder the visitor may read is looked into
                folder = self.ui.ctx.visitor(owner).resolve(model, "model")
            except PathRefused:
                return pairs
            held_out = Path(folder) / EVAL_SPLIT_NAME
            return str(held_out) if folder and held_out.exists() else pairs

        self.model.change(pairs_for_model, [self.model, self.pairs, owner], self.pairs)

        def evaluate(model: str, base: str, pairs: str, lang: str, owner: str):
            ctx = self.ui.ctx.visitor(owner)
            try:  # the loaders open exactly the paths the hosted check judged
                model, base, pairs = (ctx.resolve(v, name) for name, v in
                                      (("model", model), ("base", base), ("pairs", pairs)))
            except PathRefused as e:
                return {self.message: note(lang, "error", str(e))}
            with side_threads(ctx.run.active):  # a run training beside it keeps the other cores
                table, figure, message = evaluate_rows(model, base, pairs, lang)
            return {self.table: table, self.chart: figure, self.message: message}

        self.run_btn.click(evaluate, [self.model, self.base, self.pairs, lang, owner],
                           [self.table, self.chart, self.message])
