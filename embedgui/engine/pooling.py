"""Pooling token states into one vector per text, and the end-of-text token that last-token pooling needs.

Decoder-only embedders (Qwen3-Embedding style) pool the last token, which must be the same end-of-text token for
every text; ensure_eos makes the tokenizer append it, in a form saved with the model.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

NORM_EPS = 1e-6  # large enough not to underflow in half precision


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str = "mean") -> torch.Tensor:
    """One vector per sequence from token states [B, T, H] and attention mask [B, T], computed in float32.

    mean: average of the non-padding tokens; cls: the first non-padding token (the first position under right
    padding, as sentence-transformers takes it); last: the last non-padding token (left or right padding, as
    decoder embedders need). Padding never contributes.
    """
    h = hidden.float()
    m = mask.to(h.dtype)
    if mode == "mean":
        summed = (h * m.unsqueeze(-1)).sum(dim=1)
        return summed / m.sum(dim=1, keepdim=True).clamp(min=1.0)  # an all-padding row gives 0, not NaN
    if mode == "cls":
        if bool((mask[:, 0] == 1).all()):  # right padding (or none): the first position is real everywhere
            return h[:, 0]
        first = mask.long().argmax(dim=1)  # left padding: the first attended position
        return h[torch.arange(h.size(0), device=h.device), first]
    if mode == "last":
        if bool((mask[:, -1] == 1).all()):  # left padding (or no padding): the last position is real everywhere
            return h[:, -1]
        last = (mask.long().sum(dim=1) - 1).clamp(min=0)
        return h[torch.arange(h.size(0), device=h.device), last]
    raise ValueError(f"pooling: '{mode}' is not one of mean, cls, last")


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """Unit length in float32 with eps=1e-6, so half-precision inputs cannot give NaN."""
    return F.normalize(x.float(), p=2, dim=-1, eps=NORM_EPS)


def is_decoder_only(model: nn.Module) -> bool:
    """A decoder-only (causal) model: some attention module is causal and the model is no encoder-decoder."""
    config = getattr(model, "config", None)
    if getattr(config, "is_encoder_decoder", False):
        return False
    return any(getattr(m, "is_causal", False) is True for m in model.modules())


def appends_eos(tokenizer: Any) -> bool:
    """True when the tokenizer itself ends every text with its end-of-text token."""
    eos = getattr(tokenizer, "eos_token_id", None)
    ids = tokenizer(["a"])["input_ids"][0]
    return eos is not None and len(ids) > 0 and ids[-1] == eos


def ensure_eos(tokenizer: Any) -> bool:
    """Make a fast tokenizer append its end-of-text token (Qwen3-Embedding style); True when it now does.

    The rule goes into the tokenizer's post-processor, so tokenizer.json saved with the model carries it and
    SentenceTransformer(dir) tokenizes exactly as the trainer did (sentence-transformers adds no token itself).
    """
    if appends_eos(tokenizer):
        return True
    eos, eos_id = getattr(tokenizer, "eos_token", None), getattr(tokenizer, "eos_token_id", None)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if eos is None or eos_id is None or backend is None:
        log.warning("Last-token pooling without an end-of-text token: the tokenizer has no eos_token (or is not "
                    "a fast tokenizer), so each text's own last token is pooled.")
        return False
    from tokenizers import processors

    ids = tokenizer(["a"])["input_ids"][0]
    bos, bos_id = getattr(tokenizer, "bos_token", None), getattr(tokenizer, "bos_token_id", None)
    keep_bos = bos is not None and bos_id is not None and len(ids) > 0 and ids[0] == bos_id
    head = f"{bos}:0 " if keep_bos else ""
    special = [(eos, eos_id)] + ([(bos, bos_id)] if keep_bos and bos != eos else [])
    backend.post_processor = processors.TemplateProcessing(
        single=f"{head}$A:0 {eos}:0", pair=f"{head}$A:0 {eos}:0 $B:1 {eos}:1", special_tokens=special)
    log.info("Appending %s to every text for last-token pooling", eos)
    return appends_eos(tokenizer)
