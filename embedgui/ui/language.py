"""The language check: an English-only model about to learn mostly Korean data gets a warning (Config, Train)."""

from __future__ import annotations

import re
from pathlib import Path

from ..engine.config import DEFAULT_MODEL_ID, Config
from ..engine.data import PairsError, find_pairs_path
from ..engine.modeling import packaged_model_path
from .base import note
from .i18n import t

# Model names that only know English; a Korean dataset on them trains poorly (their vocabulary splits Hangul).
ENGLISH_ONLY = re.compile(r"all-minilm|all-mpnet|all-distilroberta|msmarco|multi-qa|bge-.*-en|gte-(small|base|large)"
                          r"$|e5-(small|base|large)(-v2)?$|nomic-embed-text", re.IGNORECASE)
MULTILINGUAL = re.compile(r"multilingual|xlm|m3|ko|labse|paraphrase-multilingual", re.IGNORECASE)


def korean_share(pairs_path: str | None, limit: int = 400) -> float:
    """Share of the first `limit` lines of a pairs file that contain Hangul (0 when unreadable)."""
    if not pairs_path or not Path(pairs_path).is_file():
        return 0.0
    hangul = total = 0
    try:
        with open(pairs_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if total >= limit:
                    break
                total += 1
                hangul += bool(re.search(r"[\uac00-\ud7a3]", line))
    except OSError:
        return 0.0
    return hangul / total if total else 0.0


def language_warning(config: Config, lang: str) -> str:
    """A warning when an English-only model is about to learn mostly Korean data; "" otherwise."""
    model = str(config.model_id)
    packaged = packaged_model_path()
    if packaged is not None and model and Path(model).expanduser().resolve() == packaged.resolve():
        model = DEFAULT_MODEL_ID  # a run's own config names the packaged copy by its folder (…/model)
    name = Path(model.rstrip("/")).name
    if not ENGLISH_ONLY.search(name) or MULTILINGUAL.search(name):
        return ""
    try:  # the file training will read (beside the workspace, inside a hosted app's folders), else none
        pairs = find_pairs_path(config.data.pairs_path, config.base_dir, roots=config.allowed_roots)
    except (PairsError, OSError, ValueError):
        return ""
    share = korean_share(str(pairs))
    if share < 0.3:
        return ""
    return note(lang, "warning", t(lang, "lang.mismatch", model=name, share=share))
