"""Search tab: top-k texts for a query from the fine-tuned model and, side by side, the base model."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import gradio as gr
import pandas as pd

from ..engine.modeling import load_embedder
from ..engine.runner import USER_ERRORS
from ..engine.search import CorpusError, SearchIndex, SearchIndexError, load_corpus
from .i18n import t


class IndexCache:
    """Built indexes keyed by (model, corpus, column); a few kept so repeated queries are instant."""

    def __init__(self, size: int = 4):
        self.size, self._items, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, model: str, corpus: str, column: str | None) -> SearchIndex:
        # A model retrained in place or a re-uploaded corpus has new files: their stamps make a new key.
        key = (model, _stamp(model), corpus, _stamp(corpus), column or "")
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        index = SearchIndex.build(load_corpus(corpus, column or None), load_embedder(model, device="auto"))
        with self._lock:
            self._items[key] = index
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return index


def _stamp(path: str) -> tuple[int, int]:
    """(newest modification time, total size) of a file or of a folder's files; (0, 0) for a hub id."""
    p = Path(path).expanduser()
    if not p.exists():
        return 0, 0
    files = [p] if p.is_file() else [f for f in p.iterdir() if f.is_file()]
    stats = [f.stat() for f in files]
    return max((st.st_mtime_ns for st in stats), default=0), sum(st.st_size for st in stats)


def search_tables(cache: IndexCache, query: str, k: int, model: str, base: str, corpus: str,
                  column: str | None) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(fine-tuned hits, base hits, message); an error is a one-line message and empty tables."""
    empty = pd.DataFrame(columns=["score", "text"])
    if not (query or "").strip():
        return empty, empty, ""
    if not corpus:
        return empty, empty, "❌ Choose a corpus (training pairs or an uploaded file)."
    tables = []
    try:
        for name in (model, base):
            if not (name or "").strip():
                tables.append(empty)
                continue
            hits = cache.get(name.strip(), corpus, column).query(query.strip(), k=int(k))
            tables.append(pd.DataFrame({"score": [round(h.score, 4) for h in hits], "text": [h.text for h in hits]}))
    except USER_ERRORS + (CorpusError, SearchIndexError, OSError) as e:
        return empty, empty, f"❌ {e}"
    return tables[0], tables[1], ""


class SearchTab:
    def __init__(self, lang: str, models: list[str], base: str, corpus: str):
        with gr.Row():
            self.query = gr.Textbox(label=t(lang, "search.query"), elem_id="search-query", scale=4)
            self.k = gr.Slider(1, 20, value=5, step=1, label=t(lang, "search.k"), scale=1)
            self.run_btn = gr.Button(t(lang, "search.run"), variant="primary", elem_id="search-run", scale=1)
        with gr.Row():
            self.model = gr.Dropdown(models, value=models[0] if models else None, allow_custom_value=True,
                                     label=t(lang, "eval.model"), elem_id="search-model")
            self.base = gr.Textbox(base, label=t(lang, "eval.base"), elem_id="search-base")
        with gr.Row():
            self.corpus = gr.Textbox(corpus, label=t(lang, "search.corpus"), elem_id="search-corpus", scale=3)
            self.upload = gr.File(label=t(lang, "search.corpus_file"), file_types=[".txt", ".csv", ".tsv", ".jsonl"],
                                  type="filepath", scale=2)
            self.column = gr.Textbox(label=t(lang, "search.column"), scale=1)
        self.message = gr.Markdown(elem_id="search-message")
        with gr.Row():
            self.tuned_table = gr.Dataframe(label=t(lang, "search.tuned"), interactive=False, wrap=True,
                                            elem_id="search-tuned")
            self.base_table = gr.Dataframe(label=t(lang, "search.base"), interactive=False, wrap=True,
                                           elem_id="search-base-hits")
