"""Search tab: top-k texts for a query from the fine-tuned model and, side by side, the base model.

The default corpus is the training pairs plus the run's held-out texts (so a held-out term can be found), and
each hit shows its term (the anchor) next to its text.
"""

from __future__ import annotations

import functools
import json
import threading
from collections import OrderedDict
from pathlib import Path

import gradio as gr
import pandas as pd

from ..engine.device import side_threads
from ..engine.errors import USER_ERRORS
from ..engine.files import atomic_write_text
from ..engine.modeling import load_embedder
from ..engine.paths import PathRefused
from ..engine.search import CorpusError, SearchIndex, SearchIndexError, load_corpus
from ..engine.trainer import EVAL_SPLIT_NAME
from .base import UI, note, quota_note, safe_name
from .config_tab import workspace_config
from .context import AppContext
from .i18n import t

# One search at a time encodes: concurrent queries would each spread over every core and starve a training run
# in the same process (measured by scripts/loadtest.py); queued, each one takes milliseconds.
_ENCODING = threading.Lock()


class IndexCache:
    """Built indexes keyed by (model, corpus, column); a few kept so repeated queries are instant."""

    def __init__(self, size: int = 4):
        self.size, self._items, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, model: str, corpus: str, column: str | None, dim: int | None = None) -> SearchIndex:
        # A model retrained in place or a re-uploaded corpus has new files: their stamps make a new key.
        key = (model, _stamp(model), corpus, _stamp(corpus), column or "", dim)
        if (index := self._lookup(key)) is not None:
            return index
        with _ENCODING:  # one build at a time; twenty visitors asking at once build it once
            if (index := self._lookup(key)) is not None:
                return index
            index = SearchIndex.build(load_corpus(corpus, column or None), load_embedder(model, device="auto"),
                                      dim=dim)
        with self._lock:
            self._items[key] = index
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return index

    def _lookup(self, key: tuple) -> SearchIndex | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None


def _stamp(path: str) -> tuple[int, int]:
    """(newest modification time, total size) of a file or of a folder's files; (0, 0) for a hub id."""
    p = Path(path).expanduser()
    if not p.exists():
        return 0, 0
    files = [p] if p.is_file() else [f for f in p.iterdir() if f.is_file()]
    stats = [f.stat() for f in files]
    return max((st.st_mtime_ns for st in stats), default=0), sum(st.st_size for st in stats)


def terms_of(corpus: str) -> dict[str, str]:
    """positive text -> its anchor (term) for a pairs .jsonl corpus; {} for other files."""
    path = Path(corpus)
    if path.suffix.lower() != ".jsonl" or not path.is_file():
        return {}
    return _terms(str(path), _stamp(str(path)))


@functools.lru_cache(maxsize=8)
def _terms(path: str, stamp: tuple[int, int]) -> dict[str, str]:
    out: dict[str, str] = {}
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and isinstance(row.get("positive"), str) and isinstance(row.get("anchor"), str):
                out.setdefault(row["positive"].strip(), row["anchor"])
    return out


def merged_corpus(parts: list[str], dest: Path) -> str:
    """One pairs file holding the lines of several (training pairs + held-out rows); the first part if only one."""
    files = [p for p in dict.fromkeys(parts) if p and Path(p).is_file()]
    if len(files) <= 1:
        return files[0] if files else ""
    text = "".join(Path(p).read_text(encoding="utf-8-sig").rstrip("\n") + "\n" for p in files)
    if not dest.exists() or dest.read_text(encoding="utf-8") != text:
        atomic_write_text(dest, text)
    return str(dest)


def search_tables(cache: IndexCache, query: str, k: int, model: str, base: str, corpus: str, column: str | None,
                  lang: str = "en", dim: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(fine-tuned hits, base hits, message); an error is a one-line message and empty tables.

    dim: the fine-tuned model's index at that Matryoshka size (the base model keeps its full size)."""
    score, term, text = t(lang, "col.score"), t(lang, "col.term"), t(lang, "col.text")
    empty = pd.DataFrame(columns=[score, text])
    if not (query or "").strip():
        return empty, empty, ""
    if not corpus:
        return empty, empty, note(lang, "error", t(lang, "search.no_corpus"))
    terms = {} if column else terms_of(corpus)
    size = (dim or "").strip()
    if size and not (size.isdigit() and int(size) > 0):
        return empty, empty, note(lang, "error", t(lang, "search.bad_dim", value=size))
    tables = []
    try:
        for name, cut in ((model, int(size) if size else None), (base, None)):
            if not (name or "").strip():
                tables.append(empty)
                continue
            index = cache.get(name.strip(), corpus, column, cut)
            with _ENCODING:
                hits = index.query(query.strip(), k=int(k))
            columns = {score: [round(h.score, 4) for h in hits]}
            if terms:
                columns[term] = [terms.get(h.text.strip(), "") for h in hits]
            columns[text] = [h.text for h in hits]
            tables.append(pd.DataFrame(columns))
    except USER_ERRORS + (CorpusError, SearchIndexError, OSError) as e:
        return empty, empty, note(lang, "error", str(e))
    return tables[0], tables[1], ""


class SearchTab:
    def __init__(self, ui: UI, models: list[str], base: str, corpus: str):
        self.ui, tx = ui, ui.texts
        self.cache = IndexCache()
        with gr.Row():
            self.query = tx.make(gr.Textbox, "search.query", elem_id="search-query", scale=4)
            self.k = tx.make(gr.Slider, "search.k", minimum=1, maximum=20, value=5, step=1, scale=1)
            self.run_btn = tx.make(gr.Button, "search.run", "value", variant="primary", elem_id="search-run", scale=1)
        with gr.Row():
            self.model = tx.make(gr.Dropdown, "eval.model", choices=models, value=models[0] if models else None,
                                 allow_custom_value=True, elem_id="search-model")
            self.base = tx.make(gr.Textbox, "eval.base", value=base, elem_id="search-base")
        with gr.Row():
            self.corpus = tx.make(gr.Textbox, "search.corpus", value=corpus, elem_id="search-corpus", scale=3)
            tx.add(self.corpus, "search.corpus_info", "info")
            self.upload = tx.make(gr.File, "search.corpus_file", file_types=[".txt", ".csv", ".tsv", ".jsonl"],
                                  type="filepath", scale=2)
            self.column = tx.make(gr.Textbox, "search.column", scale=1)
            self.dim = tx.make(gr.Textbox, "search.dim", elem_id="search-dim", scale=1)
            tx.add(self.dim, "search.dim_info", "info")
        self.message = gr.Markdown(elem_id="search-message")
        widths = ["12%", "28%", "60%"]
        with gr.Row():
            self.tuned_table = tx.make(gr.Dataframe, "search.tuned", interactive=False, wrap=True,
                                       column_widths=widths, elem_id="search-tuned")
            self.base_table = tx.make(gr.Dataframe, "search.base", interactive=False, wrap=True,
                                      column_widths=widths, elem_id="search-base-hits")

    def default_corpus(self, model_dir: str | None, owner: str = "") -> str:
        """The training pairs plus the held-out texts (the run's eval split, or the config's eval file)."""
        ctx = self.ui.ctx.visitor(owner)
        config = workspace_config(ctx)
        parts = [config.data.pairs_path or "", config.data.eval_path or ""]
        if model_dir and (Path(model_dir) / EVAL_SPLIT_NAME).is_file():
            try:
                from ..engine import runs

                run_cfg = runs.run_config(model_dir)
                parts = [run_cfg.data.pairs_path or "", run_cfg.data.eval_path or "",
                         str(Path(model_dir) / EVAL_SPLIT_NAME)]
            except Exception:  # noqa: BLE001 - an unreadable run config falls back to the workspace's data
                parts.append(str(Path(model_dir) / EVAL_SPLIT_NAME))
        name = Path(model_dir).name if model_dir else "workspace"
        return merged_corpus(self._resolved(ctx, parts), ctx.data_dir / f"corpus-{name}.jsonl")

    @staticmethod
    def _resolved(ctx: AppContext, parts: list[str]) -> list[str]:
        """The files the loaders would open for these values (beside the workspace, never the server's working
        directory on a hosted app), leaving out what a hosted app refuses: a config may name a path that was
        inside the visitor's folder as typed and is another's file as the working directory sees it."""
        out = []
        for part in parts:
            try:
                out.append(ctx.resolve(part, "corpus"))
            except PathRefused:
                continue
        return out

    def upload_corpus(self, path: str | None, owner: str, lang: str = "en") -> dict:
        """A dropped corpus file, copied into the (visitor's) data folder under a safe name."""
        if not path:
            return {self.message: ""}
        ctx = self.ui.ctx.visitor(owner)
        if over := ctx.over_quota(Path(path).stat().st_size):
            return {self.message: quota_note(lang, over)}
        dest = ctx.data_dir / f"corpus-{safe_name(Path(path).name)}"
        dest.write_bytes(Path(path).read_bytes())
        return {self.corpus: str(dest), self.message: ""}

    def wire(self) -> None:
        lang, owner = self.ui.lang, self.ui.tabs["train"].owner

        self.upload.upload(self.upload_corpus, [self.upload, owner, lang], [self.corpus, self.message])
        inputs = [self.query, self.k, self.model, self.base, self.corpus, self.column, lang, self.dim, owner]
        outputs = [self.tuned_table, self.base_table, self.message]

        def search(query: str, k: float, model: str, base: str, corpus: str, column: str, lang: str, dim: str,
                   owner: str = ""):
            ctx = self.ui.ctx.visitor(owner)
            try:  # the loaders open exactly the paths the hosted check judged
                model, base, corpus = (ctx.resolve(v, name) for name, v in
                                       (("model", model), ("base", base), ("corpus", corpus)))
            except PathRefused as e:
                return {self.message: note(lang, "error", str(e))}
            with side_threads(ctx.run.active):  # a run training beside it keeps the other cores
                a, b, message = search_tables(self.cache, query, k, model, base, corpus, column, lang, dim)
            return {self.tuned_table: a, self.base_table: b, self.message: message}

        self.run_btn.click(search, inputs, outputs)
        self.query.submit(search, inputs, outputs)
