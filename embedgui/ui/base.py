"""What the tabs share while the page is built: the app context, the text registry and the language state."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .context import AppContext
from .engine_text import engine_text
from .i18n import Texts, t


@dataclass
class UI:
    """Handed to every tab: ctx (workspace, Run), texts (registry for the language switch), lang (gr.State)."""

    ctx: AppContext
    texts: Texts
    lang: Any = None  # gr.State holding "en" or "ko"
    owner: Any = None  # gr.BrowserState: this browser's id (its runs, jobs and, hosted, its own workspace)
    tabs: dict[str, Any] = field(default_factory=dict)  # "data", "config", "train", "eval", "search" -> tab


def note(lang: str, kind: str, text: str) -> str:
    """A message with its kind as a bold word ("Error: ...", "오류: ..."), not an emoji some fonts lack."""
    return f"**{t(lang, 'word.' + kind)}:** {engine_text(text, lang)}"


def safe_name(name: str) -> str:
    """A file name the app saves in a visitor's folder: letters (any script), digits and . _ - @ + ~ only, so that
    train_view.hide_visitor_paths finds where its path ends in a sentence."""
    return re.sub(r"[^\w.@+~-]+", "_", name).strip("_") or "file"


def quota_note(lang: str, over: tuple[float, float]) -> str:
    """The refusal when a hosted visitor's folder would pass its quota (AppContext.over_quota)."""
    used, quota = over
    return note(lang, "error", t(lang, "hosted.quota", used=used, quota=quota))
