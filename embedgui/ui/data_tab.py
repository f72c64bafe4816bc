"""Data tab: crawl glossary pages, or drop a CSV/TSV/JSONL; choose columns; compose pairs.jsonl for training."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

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
from .context import SAMPLE_GLOSSARY, AppContext
from .i18n import t

PREVIEW_ROWS = 50
MAX_HOSTED_URLS = 20  # a public app must not become a crawler for hire


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def table_preview(path: str) -> tuple[list[str], str, str, pd.DataFrame, str]:
    """(columns, anchor column, positive column, preview, message) of a table file."""
    table = read_table(path)
    choice = detect_columns(table)
    preview = pd.DataFrame([row[: len(table.columns)] for row in table.rows[:PREVIEW_ROWS]],
                           columns=table.columns).astype(str)
    message = (f"✅ {Path(path).name}: {len(table.rows)} rows, columns {', '.join(table.columns)} "
               f"({table.encoding}); {choice.how}")
    return table.columns, choice.anchor, choice.positive, preview, message


def accept_upload(ctx: AppContext, uploaded: str | None):
    """Copy an upload into the workspace (size-checked) and preview it."""
    if not uploaded:
        return None, gr.update(), gr.update(), pd.DataFrame(), ""
    src = Path(uploaded)
    size_mb = src.stat().st_size / 1e6
    if size_mb > ctx.max_upload_mb:
        return None, gr.update(), gr.update(), pd.DataFrame(), (
            f"❌ {src.name} is {size_mb:.1f} MB; the limit is {ctx.max_upload_mb} MB. Split the file or run "
            "`python -m embedgui compose` locally.")
    dest = ctx.data_dir / f"upload-{_stamp()}-{src.name}"
    shutil.copyfile(src, dest)
    return _preview_updates(str(dest))


def _preview_updates(path: str):
    try:
        columns, anchor, positive, preview, message = table_preview(path)
    except (ComposeError, OSError, ValueError) as e:
        return None, gr.update(choices=[], value=None), gr.update(choices=[], value=None), pd.DataFrame(), f"❌ {e}"
    return (path, gr.update(choices=columns, value=anchor), gr.update(choices=columns, value=positive), preview,
            message)


def run_crawl(ctx: AppContext, sources: list[str], urls_text: str, limit: float, progress=gr.Progress()):
    """Crawl in the request (the progress bar follows the pages); the result becomes the table to compose."""
    urls = [u.strip() for u in (urls_text or "").splitlines() if u.strip() and not u.strip().startswith("#")]
    if ctx.hosted and len(urls) > MAX_HOSTED_URLS:
        return (None, gr.update(), gr.update(), pd.DataFrame(), pd.DataFrame(),
                f"❌ {len(urls)} URLs: a hosted app crawls at most {MAX_HOSTED_URLS} at a time; run embedgui "
                "locally for more.")
    start = resolve_sources(sources or []) + urls
    if not start:
        return None, gr.update(), gr.update(), pd.DataFrame(), pd.DataFrame(), "❌ Choose a source or give a URL."
    # None lets the crawler decide (hosted on Spaces); a hosted app never relaxes to False
    options = CrawlOptions(follow_languages=source_languages(sources or []), hosted=True if ctx.hosted else None)

    def on_event(event: CrawlEvent) -> None:
        progress((event.index - (event.kind == "started")) / max(event.total, 1), desc=f"{event.kind}: {event.url}")

    result = crawl(start, limit_per_source=int(limit) if limit else None, options=options, on_event=on_event,
                   stop_event=threading.Event())
    errors = pd.DataFrame(result.error_rows(), columns=["url", "reason"])
    if not result.entries:
        return (None, gr.update(), gr.update(), pd.DataFrame(), errors,
                f"❌ No glossary entries found on {result.pages_fetched} page(s); see the errors below.")
    path = write_glossary_csv(result.entries, ctx.data_dir / f"crawl-{_stamp()}" / "glossary.csv")
    table, anchor, positive, preview, _ = _preview_updates(str(path))
    message = (f"✅ {len(result.entries)} terms from {result.pages_fetched} page(s), {len(result.errors)} failed "
               f"→ `{path}`")
    return table, anchor, positive, preview, errors, message


def run_compose(ctx: AppContext, table_path: str | None, anchor: str | None, positive: str | None, hard_k: float,
                miner: str, eval_ratio: float, model_id: str, progress=gr.Progress()):
    """Compose pairs.jsonl (+ eval file) from the chosen table; returns the report and the new paths."""
    if not table_path:
        return "❌ Upload a file or crawl pages first.", None, None, None
    out = ctx.data_dir / f"pairs-{_stamp()}.jsonl"
    options = ComposeOptions(anchor_column=anchor or None, positive_column=positive or None, hard_k=int(hard_k),
                             miner=miner, model_id=model_id if miner == "model" else None,
                             eval_ratio=float(eval_ratio or 0))

    def on_progress(stage: str, done: int, total: int) -> None:
        progress(done / max(total, 1), desc=stage)

    try:
        report = compose(table_path, out, options=options, on_progress=on_progress)
    except (ComposeError, OSError, ValueError) as e:
        return f"❌ {e}", None, None, None
    text = "\n".join(report.lines())
    return f"```\n{text}\n```", report.output_path, report.eval_output_path, report.output_path


class DataTab:
    def __init__(self, lang: str, current_pairs: str):
        self.table_path = gr.State(None)
        self.current = gr.Textbox(current_pairs, label=t(lang, "data.current"), interactive=False,
                                  elem_id="data-current")
        with gr.Accordion(t(lang, "data.crawl"), open=False) as self.crawl_box:
            with gr.Row():
                self.sources = gr.CheckboxGroup(list(SOURCES), label=t(lang, "data.sources"))
                self.urls = gr.Textbox(label=t(lang, "data.urls"), lines=3, elem_id="data-urls")
                self.limit = gr.Number(200, precision=0, label=t(lang, "data.limit"))
            self.crawl_btn = gr.Button(t(lang, "data.crawl_btn"), elem_id="data-crawl")
            self.errors = gr.Dataframe(label=t(lang, "data.errors"), interactive=False)
        with gr.Accordion(t(lang, "data.upload"), open=True) as self.upload_box:
            with gr.Row():
                self.upload = gr.File(label=t(lang, "data.file"), file_types=[".csv", ".tsv", ".jsonl", ".txt"],
                                      type="filepath", elem_id="data-upload")
                self.sample_btn = gr.Button(t(lang, "data.use_sample"))
            with gr.Row():
                self.anchor_col = gr.Dropdown([], label=t(lang, "data.anchor_col"), elem_id="data-anchor-col")
                self.positive_col = gr.Dropdown([], label=t(lang, "data.positive_col"),
                                                elem_id="data-positive-col")
            self.message = gr.Markdown(elem_id="data-message")
            self.preview = gr.Dataframe(label=t(lang, "data.preview"), interactive=False, wrap=True,
                                        max_height=320, elem_id="data-preview")
        with gr.Accordion(t(lang, "data.compose"), open=True) as self.compose_box:
            with gr.Row():
                self.hard_k = gr.Slider(0, 10, value=3, step=1, label=t(lang, "data.hard_k"))
                self.miner = gr.Radio(["bm25", "model"], value="bm25", label=t(lang, "data.miner"))
                self.eval_ratio = gr.Slider(0, 0.5, value=0.1, step=0.05, label=t(lang, "data.eval_ratio"))
            self.compose_btn = gr.Button(t(lang, "data.compose_btn"), variant="primary", elem_id="data-compose")
            self.report = gr.Markdown(elem_id="data-report")
            self.download = gr.File(label=t(lang, "data.download"), interactive=False)

    @staticmethod
    def sample_table() -> str:
        return str(SAMPLE_GLOSSARY)
