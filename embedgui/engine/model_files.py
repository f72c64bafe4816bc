"""The files a model folder carries besides the weights: sentence-transformers files and a run's settings.

A saved model is both a Hugging Face folder and a sentence-transformers folder (modules.json, 1_Pooling,
2_Normalize, prompts in config_sentence_transformers.json); a run folder also holds the trainer's config
(train_config.json) and, for LoRA, the adapter alone in adapter/. These functions write and read those files.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .hosted import is_hosted

log = logging.getLogger(__name__)

RUN_CONFIG_NAME = "train_config.json"  # config.json in a run folder belongs to the Hugging Face model
ADAPTER_DIR = "adapter"  # a LoRA run's adapter, beside the merged model (never at the root: see Embedder.save)
# sentence-transformers modules the Embedder reproduces; anything else (Dense, ...) would be silently dropped.
KNOWN_ST_MODULES = ("Transformer", "Pooling", "Normalize")


def write_sentence_transformers_files(directory: Path, dim: int, pooling: str, normalize: bool,
                                      max_length: int, prompts: dict[str, str] | None = None,
                                      matryoshka_dims: list[int] | None = None) -> None:
    """modules.json + sentence_bert_config.json + 1_Pooling (+ 2_Normalize), the layout every ST version reads.

    The pooling config keeps the legacy pooling_mode_* keys: sentence-transformers 6 reads them too, older
    versions read only them. Matryoshka sizes go in config_sentence_transformers.json (an extra key it ignores).
    """
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        normalize_module = "sentence_transformers.models.Normalize"
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": normalize_module})
        (directory / "2_Normalize").mkdir(exist_ok=True)
    (directory / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    (directory / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_length, "do_lower_case": False}, indent=2) + "\n"
    )
    (directory / "1_Pooling").mkdir(exist_ok=True)
    pooling_config = {
        "word_embedding_dimension": dim,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": pooling == "last",
        "include_prompt": True,
    }
    (directory / "1_Pooling" / "config.json").write_text(json.dumps(pooling_config, indent=2) + "\n")
    st_config: dict[str, Any] = {"prompts": {k: v for k, v in (prompts or {}).items() if v is not None},
                                 "default_prompt_name": None, "similarity_fn_name": "cosine"}
    if matryoshka_dims:
        st_config["matryoshka_dims"] = sorted(matryoshka_dims, reverse=True)
    (directory / "config_sentence_transformers.json").write_text(json.dumps(st_config, indent=2) + "\n")


def saved_prompts(path: str) -> tuple[dict[str, str], list[int] | None]:
    """(prompts, matryoshka_dims) from a folder's config_sentence_transformers.json ({} and None without one)."""
    try:
        data = json.loads((Path(path) / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}, None
    if not isinstance(data, dict):
        return {}, None
    prompts = data.get("prompts") if isinstance(data.get("prompts"), dict) else {}
    dims = data.get("matryoshka_dims")
    dims = [int(d) for d in dims] if isinstance(dims, list) and all(isinstance(d, int) for d in dims) else None
    return {str(k): v for k, v in prompts.items() if isinstance(v, str)}, dims


def run_settings(path: str) -> dict[str, Any]:
    """The settings a run folder was trained with (its train_config.json), as load_embedder arguments; {} if none.

    Pooling, normalisation, prompts and the length limit are also in the saved sentence-transformers files, which
    win; the hf.* settings (remote code, default_task, loader) exist only here. A hosted app never takes
    trust_remote_code from a file.
    """
    try:
        data = json.loads((Path(path) / RUN_CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    section = {k: (data.get(k) if isinstance(data.get(k), dict) else {}) for k in ("hf", "data", "train")}
    hf, d, t = section["hf"], section["data"], section["train"]
    out: dict[str, Any] = {
        "pooling": data.get("pooling") if data.get("pooling") != "auto" else None,
        "normalize": data.get("normalize"),
        "max_length": t.get("max_length"),
        "query_prompt": d.get("query_prompt"),
        "document_prompt": d.get("document_prompt"),
        "default_task": hf.get("default_task"),
        "loader": hf.get("loader"),
        "trust_remote_code": bool(hf.get("trust_remote_code")) and not is_hosted(),
    }
    return {k: v for k, v in out.items() if v is not None}


def saved_pooling(path: str) -> tuple[str | None, bool | None, int | None]:
    """(pooling, normalize, max_length) from a sentence-transformers folder, or Nones where it is not one."""
    folder = Path(path)
    modules_file = folder / "modules.json"
    if not modules_file.exists():
        return None, None, None
    try:
        modules = json.loads(modules_file.read_text())
        pooling = None
        for m in modules:
            if m.get("type", "").endswith("Pooling"):
                cfg = json.loads((folder / m["path"] / "config.json").read_text())
                mode = cfg.get("pooling_mode")
                if isinstance(mode, list):  # sentence-transformers 6 may list several modes
                    mode = mode[0] if len(mode) == 1 else "+".join(mode)
                if mode is None:
                    mode = next((k for k, v in {"cls": "pooling_mode_cls_token", "last": "pooling_mode_lasttoken",
                                                "mean": "pooling_mode_mean_tokens"}.items() if cfg.get(v)), None)
                pooling = {"lasttoken": "last"}.get(mode, mode)
        normalize = any(m.get("type", "").endswith("Normalize") for m in modules)
        extra = [m.get("type", "?") for m in modules if not m.get("type", "").endswith(KNOWN_ST_MODULES)]
        if extra:
            log.warning("%s has sentence-transformers modules embedgui does not reproduce (%s); they are left out "
                        "of training, evaluation and the saved model.", folder, ", ".join(extra))
        st_cfg = folder / "sentence_bert_config.json"
        max_length = json.loads(st_cfg.read_text()).get("max_seq_length") if st_cfg.exists() else None
        return pooling, normalize, max_length
    except (OSError, ValueError, KeyError):
        return None, None, None


def hub_st_folder(model_id: str, revision: str | None, local_files_only: bool) -> str | None:
    """The cached snapshot folder holding a hub model's sentence-transformers files, or None (no such files,
    offline and not cached, not a hub id). Only the small JSON files are fetched."""
    if "/" not in model_id or model_id.count("/") > 1:
        return None
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        return None

    def fetch(name: str) -> Path | None:
        try:
            return Path(hf_hub_download(model_id, name, revision=revision, local_files_only=local_files_only))
        except Exception:  # not there, offline, no access: the model simply has no such file
            return None

    found = fetch("modules.json")
    prompts = fetch("config_sentence_transformers.json")
    if found is None:
        return str(prompts.parent) if prompts else None
    try:
        modules = json.loads(found.read_text(encoding="utf-8"))
        for m in modules:
            if str(m.get("type", "")).endswith("Pooling") and m.get("path"):
                fetch(f"{m['path']}/config.json")
    except (OSError, ValueError, AttributeError):
        pass
    fetch("sentence_bert_config.json")
    return str(found.parent)
