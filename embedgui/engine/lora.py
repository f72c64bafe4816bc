"""LoRA through peft: which layers get an adapter, and wrapping an Embedder's backbone in one (train.lora)."""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

# modeling imports this module inside load_embedder (only when train.lora is set), so this top import is safe.
from .modeling import Embedder, ModelLoadError

log = logging.getLogger(__name__)

# LoRA target modules when train.lora gives none: the attention projections of each family (peft's own table
# has only query/value); other architectures fall back to peft's table, then to every linear layer.
LORA_TARGETS = {
    **dict.fromkeys(("bert", "roberta", "xlm-roberta", "camembert", "electra", "data2vec-text"),
                    ["query", "key", "value", "attention.output.dense"]),
    "distilbert": ["q_lin", "k_lin", "v_lin", "out_lin"],
    "mpnet": ["q", "k", "v", "o"],
    **dict.fromkeys(("qwen2", "qwen3", "llama", "mistral", "gemma", "gemma2", "gemma3_text", "phi3"),
                    ["q_proj", "k_proj", "v_proj", "o_proj"]),
}
LORA_DEFAULTS = {"r": 8, "alpha": 16, "dropout": 0.05}


def default_lora_targets(model: nn.Module) -> list[str] | str:
    """LoRA target modules for an architecture: attention projections where known, else peft's, else all-linear."""
    model_type = getattr(getattr(model, "config", None), "model_type", "")
    if model_type in LORA_TARGETS:
        return list(LORA_TARGETS[model_type])
    try:
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_TARGETS
    except ImportError:
        PEFT_TARGETS = {}
    return list(PEFT_TARGETS.get(model_type, [])) or "all-linear"


def apply_lora(embedder: Embedder, settings: dict[str, Any], base_name: str = "") -> int:
    """Wrap the backbone in a peft LoRA model: the base weights freeze, only the adapter trains.

    settings: train.lora ({"r", "alpha", "dropout", "target_modules"}, each optional). Returns the trainable
    parameter count. The adapter layers are injected in place, so a forward submodule or a sentence-transformers
    Transformer module that wraps the same layers trains through them too.
    """
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as e:
        raise ModelLoadError("train.lora needs the peft package: run `pip install peft`, or set train.lora to "
                             "null for full fine-tuning.") from e
    options = {**LORA_DEFAULTS, **{k: v for k, v in settings.items() if v is not None}}
    targets = options.get("target_modules") or default_lora_targets(embedder.backbone)
    lora_config = LoraConfig(r=int(options["r"]), lora_alpha=options["alpha"], lora_dropout=options["dropout"],
                             target_modules=targets, bias="none")
    if base_name:
        lora_config.base_model_name_or_path = base_name
    try:
        embedder.backbone = get_peft_model(embedder.backbone, lora_config)
    except ValueError as e:  # peft: none of the target modules exist in this model
        raise ModelLoadError(f"train.lora.target_modules: {targets} does not match this model's layers "
                             f"({str(e).splitlines()[0]}); give module names from the model, or all-linear.") from e
    trainable = sum(p.numel() for p in embedder.backbone.parameters() if p.requires_grad)
    total = sum(p.numel() for p in embedder.backbone.parameters())
    log.info("LoRA r=%s alpha=%s on %s: %d of %d parameters train (%.2f%%)", options["r"], options["alpha"],
             targets, trainable, total, 100 * trainable / max(total, 1))
    return trainable
