"""Data tab: crawl glossary pages, or drop a CSV/TSV/JSONL; choose columns; compose pairs.jsonl for training."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from ..engine.compose import ComposeError, ComposeOptions, compose, detect_columns, read_table
from ..engine.crawler import (
    SOURCES,
    CrawlEvent,
    CrawlOptions,
    crawl,
    resolve_sources,
    source_languages,
    write_glossary_csv,
)
from .base import UI, note
from .config_tab import save_config, workspace_config
from .context import SAMPLE_GLOSSARY, SAMPLE_PAIRS
from .i18n import t

PREVIEW_ROWS = 50
MAX_HOSTED_URLS = 20  # a public app must not become a crawler for hire


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def table_preview(path: str, lang: str = "en") -> tuple[list[str], str, str, pd.DataFrame, str]:
    """(columns, anchor column, positive column, preview, message) of a table file."""
    table = read_table(path)
    choice = detect_columns(table)
    preview = pd.DataFrame([row[: len(table.columns)] for row in table.rows[:PREVIEW_ROWS]],
                           columns=table.columns).astype(str)
    message = t(lang, "data.upload_ok", name=Path(path).name, rows=len(table.rows), columns=", ".join(table.columns),
                encoding=table.encoding, how=choice.how)
    return table.columns, choice.anchor, choice.positive, preview, message


def compose_summary(report: Any, lang: str) -> str:
    """The composer's report: a short table in the UI language, then the full report (engine words) folded."""
    rows = [("data.report_rows", report.rows_read), ("data.report_skipped", len(report.skipped)),
            ("data.report_dups", report.duplicates_removed), ("data.report_written", report.pairs_written),
            ("data.report_neg", report.negatives_mined)]
    head = "| | |\n|---|---|\n" + "\n".join(f"| {t(lang, key)} | {value} |" for key, value in rows)
    eval_part = t(lang, "data.composed_eval", n=report.eval_pairs) if report.eval_output_path else ""
    full = "\n".join(report.lines())
    return (note(lang, "ok", t(lang, "data.composed", pairs=report.train_pairs, eval=eval_part)) + "\n\n" + head
            + f"\n\n<details><summary>{t(lang, 'data.report_details')}</summary>\n\n```\n{full}\n```\n</details>")


class DataTab:
    def __init__(self, ui: UI, current_pairs: str):
        self.ui, tx = ui, ui.texts
        self.table_path = gr.State(None)
        self.current = tx.make(gr.Textbox, "data.current", value=current_pairs, interactive=False,
                               elem_id="data-current")
        with tx.make(gr.Accordion, "data.crawl", open=False):
            with gr.Row():
                self.sources = tx.make(gr.CheckboxGroup, "data.sources", choices=list(SOURCES))
                self.urls = tx.make(gr.Textbox, "data.urls", lines=3, elem_id="data-urls")
                self.limit = tx.make(gr.Number, "data.limit", value=200, precision=0)
            self.crawl_btn = tx.make(gr.Button, "data.crawl_btn", "value", elem_id="data-crawl")
            self.errors = tx.make(gr.Dataframe, "data.errors", interactive=False)
        with tx.make(gr.Accordion, "data.upload", open=True):
            with gr.Row():
                self.upload = tx.make(gr.File, "data.file", file_types=[".csv", ".tsv", ".jsonl", ".txt"],
                                      type="filepath", elem_id="data-upload")
                self.sample_btn = tx.make(gr.Button, "data.use_sample", "value", elem_id="data-sample")
            with gr.Row():
                self.anchor_col = tx.make(gr.Dropdown, "data.anchor_col", choices=[], elem_id="data-anchor-col")
                self.positive_col = tx.make(gr.Dropdown, "data.positive_col", choices=[],
                                            elem_id="data-positive-col")
            self.message = gr.Markdown(elem_id="data-message")
            self.preview = tx.make(gr.Dataframe, "data.preview", interactive=False, wrap=True, max_height=320,
                                   elem_id="data-preview")
        with tx.make(gr.Accordion, "data.compose", open=True):
            with gr.Row():
                self.hard_k = tx.make(gr.Slider, "data.hard_k", minimum=0, maximum=10, value=3, step=1)
                self.miner = tx.make(gr.Radio, "data.miner", choices=["bm25", "model"], value="bm25")
                self.eval_ratio = tx.make(gr.Slider, "data.eval_ratio", minimum=0, maximum=0.5, value=0.1, step=0.05)
            self.compose_btn = tx.make(gr.Button, "data.compose_btn", "value", variant="primary",
                                       elem_id="data-compose")
            self.report = gr.Markdown(elem_id="data-report")
            self.download = tx.make(gr.File, "data.download", interactive=False)

    @property
    def preview_outputs(self) -> list:
        return [self.table_path, self.anchor_col, self.positive_col, self.preview, self.message]

    # -- handlers ------------------------------------------------------------------------------------------
    def preview_updates(self, path: str, lang: str) -> dict:
        try:
            columns, anchor, positive, preview, message = table_preview(path, lang)
        except (ComposeError, OSError, ValueError) as e:
            return {self.table_path: None, self.anchor_col: gr.update(choices=[], value=None),
                    self.positive_col: gr.update(choices=[], value=None), self.preview: pd.DataFrame(),
                    self.message: note(lang, "error", str(e))}
        return {self.table_path: path, self.anchor_col: gr.update(choices=columns, value=anchor),
                self.positive_col: gr.update(choices=columns, value=positive), self.preview: preview,
                self.message: note(lang, "ok", message)}

    def accept_upload(self, uploaded: str | None, lang: str) -> dict:
        """Copy an upload into the workspace (size-checked) and preview it."""
        ctx = self.ui.ctx
        if not uploaded:
            return {self.message: ""}
        src = Path(uploaded)
        size_mb = src.stat().st_size / 1e6
        if size_mb > ctx.max_upload_mb:
            return {self.table_path: None, self.message: note(lang, "error", t(
                lang, "data.too_big", name=src.name, size=size_mb, limit=ctx.max_upload_mb))}
        dest = ctx.data_dir / f"upload-{_stamp()}-{src.name}"
        shutil.copyfile(src, dest)
        return self.preview_updates(str(dest), lang)

    def run_crawl(self, sources: list[str], urls_text: str, limit: float, lang: str, progress=gr.Progress()) -> dict:
        """Crawl in the request (the progress bar follows the pages); the result becomes the table to compose."""
        ctx = self.ui.ctx
        urls = [u.strip() for u in (urls_text or "").splitlines() if u.strip() and not u.strip().startswith("#")]
        if ctx.hosted and len(urls) > MAX_HOSTED_URLS:
            return {self.message: note(lang, "error", t(lang, "data.too_many_urls", n=len(urls),
                                                         limit=MAX_HOSTED_URLS))}
        start = resolve_sources(sources or []) + urls
        if not start:
            return {self.message: note(lang, "error", t(lang, "data.no_start"))}
        # None lets the crawler decide (hosted on Spaces); a hosted app never relaxes to False
        options = CrawlOptions(follow_languages=source_languages(sources or []), hosted=True if ctx.hosted else None)

        def on_event(event: CrawlEvent) -> None:
            progress((event.index - (event.kind == "started")) / max(event.total, 1),
                     desc=f"{event.kind}: {event.url}")

        result = crawl(start, limit_per_source=int(limit) if limit else None, options=options, on_event=on_event,
                       stop_event=threading.Event())
        errors = pd.DataFrame(result.error_rows(), columns=[t(lang, "col.url"), t(lang, "col.reason")])
        if not result.entries:
            return {self.errors: errors, self.message: note(lang, "error", t(
                lang, "data.no_entries", pages=result.pages_fetched))}
        path = write_glossary_csv(result.entries, ctx.data_dir / f"crawl-{_stamp()}" / "glossary.csv")
        out = self.preview_updates(str(path), lang)
        out[self.errors] = errors
        out[self.message] = note(lang, "ok", t(lang, "data.crawled", terms=len(result.entries),
                                                pages=result.pages_fetched, failed=len(result.errors), path=path))
        return out

    def run_compose(self, table_path: str | None, anchor: str | None, positive: str | None, hard_k: float,
                    miner: str, eval_ratio: float, model_id: str, lang: str, progress=gr.Progress()) -> dict:
        """Compose pairs.jsonl (+ eval file); the new files become the run's training and eval data."""
        ctx, tabs = self.ui.ctx, self.ui.tabs
        if not table_path:
            return {self.report: note(lang, "error", t(lang, "data.no_table"))}
        if miner == "model" and (problem := ctx.refuse_path(model_id, "model_id")):
            return {self.report: note(lang, "error", problem)}
        out = ctx.data_dir / f"pairs-{_stamp()}.jsonl"
        options = ComposeOptions(anchor_column=anchor or None, positive_column=positive or None,
                                 hard_k=int(hard_k), miner=miner, model_id=model_id if miner == "model" else None,
                                 eval_ratio=float(eval_ratio or 0))

        def on_progress(stage: str, done: int, total: int) -> None:
            progress(done / max(total, 1), desc=stage)

        try:
            report = compose(table_path, out, options=options, on_progress=on_progress)
        except (ComposeError, OSError, ValueError) as e:
            return {self.report: note(lang, "error", str(e))}
        eval_out = report.eval_output_path
        # the saved workspace config follows, so a reload, Start and the command line use the new data
        config = workspace_config(ctx)
        config.data.pairs_path = report.output_path
        config.data.eval_path = eval_out or None
        if eval_out:
            config.data.eval_split = 0.0  # the composed eval file replaces the random split
        save_config(ctx, config)
        cfg = tabs["config"]
        updates = {self.report: compose_summary(report, lang), self.download: ctx.servable(report.output_path),
                   self.current: report.output_path, cfg.field("data.pairs_path"): report.output_path,
                   cfg.field("data.eval_path"): eval_out or "", tabs["eval"].pairs: eval_out or report.output_path,
                   tabs["search"].corpus: report.output_path}
        if eval_out:
            updates[cfg.field("data.eval_split")] = 0.0
        return updates

    def on_load(self) -> dict:
        """A page (re)load shows the data in use now."""
        config = workspace_config(self.ui.ctx)
        return {self.current: config.data.pairs_path or str(SAMPLE_PAIRS)}

    def wire(self) -> None:
        lang, tabs = self.ui.lang, self.ui.tabs
        self.upload.upload(self.accept_upload, [self.upload, lang], self.preview_outputs)
        self.sample_btn.click(lambda lang: self.preview_updates(str(SAMPLE_GLOSSARY), lang), lang,
                              self.preview_outputs)
        self.crawl_btn.click(self.run_crawl, [self.sources, self.urls, self.limit, lang],
                             [*self.preview_outputs, self.errors])
        cfg = tabs["config"]
        self.compose_btn.click(
            self.run_compose,
            [self.table_path, self.anchor_col, self.positive_col, self.hard_k, self.miner, self.eval_ratio,
             cfg.field("model_id"), lang],
            [self.report, self.download, self.current, cfg.field("data.pairs_path"), cfg.field("data.eval_path"),
             cfg.field("data.eval_split"), tabs["eval"].pairs, tabs["search"].corpus],
        )
        # the form's pairs file is the data in use
        cfg.field("data.pairs_path").change(lambda p: p or str(SAMPLE_PAIRS), cfg.field("data.pairs_path"),
                                            self.current, show_progress="hidden")


