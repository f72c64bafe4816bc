"""Data tab: crawl glossary pages, or drop a CSV/TSV/JSONL; choose columns; compose pairs.jsonl for training."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag

import gradio as gr
import pandas as pd

from ..engine.compose import ComposeError, ComposeOptions, ComposeStopped, compose, detect_columns, read_table
from ..engine.crawler import (
    CSV_NAME,
    SOURCES,
    STATE_NAME,
    CrawlEvent,
    CrawlOptions,
    crawl,
    resolve_sources,
    source_languages,
)
from ..engine.device import side_threads
from ..engine.files import SaveError
from ..engine.paths import PathRefused
from .base import UI, note, quota_note, safe_name
from .config_tab import save_config, validation_markdown, workspace_config
from .context import SAMPLE_GLOSSARY, SAMPLE_PAIRS
from .engine_text import column_choice_text, engine_text
from .i18n import has_text, t

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
                encoding=table.encoding, how=column_choice_text(choice.how, lang))
    return table.columns, choice.anchor, choice.positive, preview, message


def _length_line(lang: str, chars: Any, tokens: Any, max_length: int) -> str:
    return t(lang, "report.length_value", cmed=chars.median, cp95=chars.p95, cmax=chars.max, tmed=tokens.median,
             tp95=tokens.p95, tmax=tokens.max, over=tokens.share_over_max, max_length=max_length)


def report_details(report: Any, lang: str) -> list[tuple[str, str]]:
    """The composer's full report as (label, value) rows, labels in the UI language (values as the engine says)."""
    delim = {None: "", "\t": ", tab", ",": ", ','"}.get(report.delimiter, f", {report.delimiter!r}")
    cols = f"anchor `{report.columns.anchor}`, positive `{report.columns.positive}`"
    if report.columns.negatives:
        cols += f", negatives `{report.columns.negatives}`"
    rows = [(t(lang, "report.input"), f"`{report.input_path}` ({report.format}, {report.encoding}{delim})"),
            (t(lang, "report.columns"), f"{cols} ({column_choice_text(report.columns.how, lang)})"),
            (t(lang, "data.report_rows"), str(report.rows_read)),
            (t(lang, "data.report_skipped"), str(len(report.skipped)))]
    for reason, lines in report.skipped_by_reason().items():
        shown = ", ".join(map(str, lines[:10])) + (", ..." if len(lines) > 10 else "")
        rows.append((t(lang, "report.skipped_why", reason=reason),
                     f"{len(lines)} ({t(lang, 'report.lines')} {shown})"))
    rows += [(t(lang, "data.report_dups"), str(report.duplicates_removed)),
             (t(lang, "report.train_file"),
              f"`{report.output_path}` ({t(lang, 'report.pairs', n=report.train_pairs)})")]
    if report.eval_output_path:
        rows.append((t(lang, "report.eval_file"), f"`{report.eval_output_path}` (" + t(
            lang, "report.pairs_anchors", pairs=report.eval_pairs, anchors=report.eval_anchors) + ")"))
    negatives = (t(lang, "report.negatives_value", given=report.negatives_given, mined=report.negatives_mined,
                   miner=report.miner, k=report.hard_k, short=report.rows_short_of_k) if report.hard_k else
                 t(lang, "report.negatives_none", given=report.negatives_given))
    rows += [(t(lang, "report.negatives"), negatives),
             (t(lang, "report.anchor_len"), _length_line(lang, report.anchor_chars, report.anchor_tokens,
                                                         report.max_length)),
             (t(lang, "report.positive_len"), _length_line(lang, report.positive_chars, report.positive_tokens,
                                                           report.max_length)),
             (t(lang, "report.tokens_by"), report.token_source),
             (t(lang, "report.seconds"), f"{report.seconds:.1f} s")]
    return rows


def compose_summary(report: Any, lang: str) -> str:
    """The composer's report: a short table in the UI language, then the full report folded (labels translated)."""
    rows = [("data.report_rows", report.rows_read), ("data.report_skipped", len(report.skipped)),
            ("data.report_dups", report.duplicates_removed), ("data.report_written", report.pairs_written),
            ("data.report_neg", report.negatives_mined)]
    head = "| | |\n|---|---|\n" + "\n".join(f"| {t(lang, key)} | {value} |" for key, value in rows)
    eval_part = t(lang, "data.composed_eval", n=report.eval_pairs) if report.eval_output_path else ""
    full = "\n".join(f"| {label} | {value.replace('|', '/')} |" for label, value in report_details(report, lang))
    return (note(lang, "ok", t(lang, "data.composed", pairs=report.train_pairs, eval=eval_part)) + "\n\n" + head
            + f"\n\n<details><summary>{t(lang, 'data.report_details')}</summary>\n\n| | |\n|---|---|\n{full}\n"
            "</details>")


def stage_text(lang: str, stage: str) -> str:
    """A progress stage of the engine (compose's on_progress, a crawl event's kind) in the UI language."""
    return t(lang, f"stage.{stage}") if has_text(f"stage.{stage}") else stage


def crawl_folder(data_dir: Path, urls: list[str], limit: int | None, options: CrawlOptions) -> Path:
    """Where a crawl writes: the folder of a stopped crawl of the same job (so it goes on there), else a new one."""
    start = list(dict.fromkeys(urldefrag(u.strip())[0] for u in urls if u.strip()))  # as crawl() keys its job
    job = {"urls": start, "limit_per_source": limit, "follow_languages": list(options.follow_languages)}
    for folder in sorted(data_dir.glob("crawl-*"), reverse=True):
        try:
            if json.loads((folder / STATE_NAME).read_text(encoding="utf-8")).get("job") == job:
                return folder
        except (OSError, ValueError, AttributeError):
            continue
    return data_dir / f"crawl-{_stamp()}"


class DataTab:
    def __init__(self, ui: UI, current_pairs: str):
        self.ui, tx = ui, ui.texts
        # The running crawl and compose jobs' stop events, by (kind, owner): a Stop sets the one its page started.
        self.jobs: dict[tuple[str, str | None], threading.Event] = {}
        self._jobs_lock = threading.Lock()
        self.table_path = gr.State(None)
        self.current = tx.make(gr.Textbox, "data.current", value=current_pairs, interactive=False,
                               elem_id="data-current")
        with tx.make(gr.Accordion, "data.crawl", open=False):
            with gr.Row():
                self.sources = tx.make(gr.CheckboxGroup, "data.sources", choices=list(SOURCES))
                self.urls = tx.make(gr.Textbox, "data.urls", lines=3, elem_id="data-urls")
                self.limit = tx.make(gr.Number, "data.limit", value=200, precision=0)
            with gr.Row():
                self.crawl_btn = tx.make(gr.Button, "data.crawl_btn", "value", elem_id="data-crawl")
                self.stop_crawl_btn = tx.make(gr.Button, "data.stop_crawl", "value", variant="stop",
                                              elem_id="data-crawl-stop")
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
            with gr.Row():
                self.compose_btn = tx.make(gr.Button, "data.compose_btn", "value", variant="primary",
                                           elem_id="data-compose")
                self.stop_compose_btn = tx.make(gr.Button, "data.stop_compose", "value", variant="stop",
                                                elem_id="data-compose-stop")
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

    def accept_upload(self, uploaded: str | None, lang: str, owner: str = "") -> dict:
        """Copy an upload into the (visitor's) workspace (size-checked) and preview it."""
        ctx = self.ui.ctx.visitor(owner)
        if not uploaded:
            return {self.message: ""}
        src = Path(uploaded)
        size_mb = src.stat().st_size / 1e6
        if size_mb > ctx.max_upload_mb:
            return {self.table_path: None, self.message: note(lang, "error", t(
                lang, "data.too_big", name=src.name, size=size_mb, limit=ctx.max_upload_mb))}
        if over := ctx.over_quota(src.stat().st_size):
            return {self.table_path: None, self.message: quota_note(lang, over)}
        dest = ctx.data_dir / f"upload-{_stamp()}-{safe_name(src.name)}"
        shutil.copyfile(src, dest)
        out = self.preview_updates(str(dest), lang)
        if out[self.table_path] is None:  # refused: not kept in the workspace (nor offered to compose)
            dest.unlink(missing_ok=True)
        return out

    # -- stoppable jobs ------------------------------------------------------------------------------------
    def _job_key(self, kind: str, owner: str | None) -> tuple[str, str | None]:
        # one user: any page may stop the job; hosted: only the browser that started it (its owner id)
        return kind, (owner or None) if self.ui.ctx.hosted else None

    def _begin(self, kind: str, owner: str | None) -> threading.Event | None:
        """A new stop event for this job, or None when the same job is already running for this owner."""
        key = self._job_key(kind, owner)
        with self._jobs_lock:
            if key in self.jobs:
                return None
            event = self.jobs[key] = threading.Event()
            return event

    def _end(self, kind: str, owner: str | None, event: threading.Event) -> None:
        key = self._job_key(kind, owner)
        with self._jobs_lock:
            if self.jobs.get(key) is event:
                del self.jobs[key]

    def _stop(self, kind: str, owner: str | None) -> bool:
        with self._jobs_lock:
            event = self.jobs.get(self._job_key(kind, owner))
        if event is None:
            return False
        event.set()
        return True

    def stop_crawl(self, lang: str, owner: str = "") -> dict:
        stopping = self._stop("crawl", owner)
        return {self.message: note(lang, "ok", t(lang, "data.crawl_stopping")) if stopping
                else t(lang, "data.no_crawl")}

    def stop_compose(self, lang: str, owner: str = "") -> dict:
        stopping = self._stop("compose", owner)
        return {self.report: note(lang, "ok", t(lang, "data.compose_stopping")) if stopping
                else t(lang, "data.no_compose")}

    def run_crawl(self, sources: list[str], urls_text: str, limit: float, lang: str, owner: str = "",
                  progress: Callable = gr.Progress()) -> dict:
        """Crawl in the request (the progress bar follows the pages) into a folder written page by page; a Stop
        keeps the pages finished, and the same crawl pressed again goes on there. The result is the table to use."""
        ctx = self.ui.ctx.visitor(owner)
        urls = [u.strip() for u in (urls_text or "").splitlines() if u.strip() and not u.strip().startswith("#")]
        if ctx.hosted and len(urls) > MAX_HOSTED_URLS:
            return {self.message: note(lang, "error", t(lang, "data.too_many_urls", n=len(urls),
                                                         limit=MAX_HOSTED_URLS))}
        start = resolve_sources(sources or []) + urls
        if not start:
            return {self.message: note(lang, "error", t(lang, "data.no_start"))}
        if over := ctx.over_quota():
            return {self.message: quota_note(lang, over)}
        # None lets the crawler decide (hosted on Spaces); a hosted app never relaxes to False
        options = CrawlOptions(follow_languages=source_languages(sources or []), hosted=True if ctx.hosted else None)
        per_source = int(limit) if limit else None
        folder = crawl_folder(ctx.data_dir, start, per_source, options)

        def on_event(event: CrawlEvent) -> None:
            progress((event.index - (event.kind == "started")) / max(event.total, 1),
                     desc=f"{stage_text(lang, event.kind)}: {event.url}")

        stop = self._begin("crawl", owner)
        if stop is None:
            return {self.message: note(lang, "busy", t(lang, "data.crawl_busy"))}
        try:
            result = crawl(start, limit_per_source=per_source, options=options, on_event=on_event, stop=stop,
                           output=folder)
        except SaveError as e:
            return {self.message: note(lang, "error", str(e))}
        finally:
            self._end("crawl", owner, stop)
        errors = pd.DataFrame([[url, engine_text(reason, lang)] for url, reason in result.error_rows()],
                              columns=[t(lang, "col.url"), t(lang, "col.reason")])
        path = folder / CSV_NAME
        if result.stopped:
            out = self.preview_updates(str(path), lang) if result.entries else {}
            return {**out, self.errors: errors, self.message: note(lang, "warning", t(
                lang, "data.crawl_stopped", pages=result.pages_fetched, terms=len(result.entries), path=path))}
        if not result.entries:
            return {self.errors: errors, self.message: note(lang, "error", t(
                lang, "data.no_entries", pages=result.pages_fetched))}
        out = self.preview_updates(str(path), lang)
        out[self.errors] = errors
        resumed = t(lang, "data.crawl_resumed", n=result.pages_resumed) if result.pages_resumed else ""
        out[self.message] = note(lang, "ok", t(lang, "data.crawled", terms=len(result.entries),
                                                pages=result.pages_fetched, failed=len(result.errors), path=path)
                                 + resumed)
        return out

    def run_compose(self, table_path: str | None, anchor: str | None, positive: str | None, hard_k: float,
                    miner: str, eval_ratio: float, model_id: str, lang: str, owner: str = "",
                    progress: Callable = gr.Progress()) -> dict:
        """Compose pairs.jsonl (+ eval file); the new files become the run's training and eval data."""
        ctx, tabs = self.ui.ctx.visitor(owner), self.ui.tabs
        if not table_path:
            return {self.report: note(lang, "error", t(lang, "data.no_table"))}
        if over := ctx.over_quota():
            return {self.report: quota_note(lang, over)}
        if miner == "model":
            try:  # the loader opens what the hosted check judged (beside the workspace, or a Hub id)
                model_id = ctx.resolve(model_id, "model_id")
            except PathRefused as e:
                return {self.report: note(lang, "error", str(e))}
        out = ctx.data_dir / f"pairs-{_stamp()}.jsonl"
        run_config = workspace_config(ctx)  # mining uses the prompts training will use
        options = ComposeOptions(anchor_column=anchor or None, positive_column=positive or None,
                                 hard_k=int(hard_k), miner=miner, model_id=model_id if miner == "model" else None,
                                 query_prompt=run_config.data.query_prompt,
                                 document_prompt=run_config.data.document_prompt, eval_ratio=float(eval_ratio or 0))
        loads_model = options.miner == "model" and options.hard_k > 0

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage == "reading" and done >= total and loads_model:
                # compose loads the mining model right after reading, and reports nothing while it does
                progress(0.0, desc=stage_text(lang, "loading_model") + f": {model_id}")
            else:
                progress(done / max(total, 1), desc=stage_text(lang, stage))

        stop = self._begin("compose", owner)
        if stop is None:
            return {self.report: note(lang, "busy", t(lang, "data.compose_busy"))}
        try:
            with side_threads(ctx.run.active and loads_model):  # a run training beside it keeps the other cores
                report = compose(table_path, out, options=options, on_progress=on_progress, stop=stop)
        except ComposeStopped:
            return {self.report: note(lang, "warning", t(lang, "data.compose_stopped"))}
        except (ComposeError, OSError, ValueError) as e:
            return {self.report: note(lang, "error", str(e))}
        finally:
            self._end("compose", owner, stop)
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
                   tabs["search"].corpus: tabs["search"].default_corpus(None, owner),  # training + held-out
                   cfg.validation: validation_markdown(lang, config.validate(), config)}  # new data: language check
        if eval_out:
            updates[cfg.field("data.eval_split")] = 0.0
        return updates

    def on_load(self, owner: str) -> dict:
        """A page (re)load shows the data in use now."""
        config = workspace_config(self.ui.ctx.visitor(owner))
        return {self.current: config.data.pairs_path or str(SAMPLE_PAIRS)}

    def wire(self) -> None:
        lang, tabs = self.ui.lang, self.ui.tabs
        owner = tabs["train"].owner  # the browser's id: its own workspace and jobs in a hosted app
        self.upload.upload(self.accept_upload, [self.upload, lang, owner], self.preview_outputs)
        self.sample_btn.click(lambda lang: self.preview_updates(str(SAMPLE_GLOSSARY), lang), lang,
                              self.preview_outputs)
        self.crawl_btn.click(self.run_crawl, [self.sources, self.urls, self.limit, lang, owner],
                             [*self.preview_outputs, self.errors])
        # Stop runs beside the job it stops (its own queue); the job sees the event at its next page or block
        self.stop_crawl_btn.click(self.stop_crawl, [lang, owner], self.message, concurrency_limit=None,
                                  show_progress="hidden")
        cfg = tabs["config"]
        self.compose_btn.click(
            self.run_compose,
            [self.table_path, self.anchor_col, self.positive_col, self.hard_k, self.miner, self.eval_ratio,
             cfg.field("model_id"), lang, owner],
            [self.report, self.download, self.current, cfg.field("data.pairs_path"), cfg.field("data.eval_path"),
             cfg.field("data.eval_split"), tabs["eval"].pairs, tabs["search"].corpus, cfg.validation],
        )
        self.stop_compose_btn.click(self.stop_compose, [lang, owner], self.report, concurrency_limit=None,
                                    show_progress="hidden")
        # the form's pairs file is the data in use
        cfg.field("data.pairs_path").change(lambda p: p or str(SAMPLE_PAIRS), cfg.field("data.pairs_path"),
                                            self.current, show_progress="hidden")


