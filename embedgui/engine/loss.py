"""Loss objects the trainer is given: `loss(model, batch) -> LossOutput`, as sentence-transformers' losses are modules.

The first one is InfoNCE with in-batch and hard negatives and false negatives masked out. A new loss (gradient
caching, a symmetric loss, Matryoshka) is a new class with the same call; the training loop does not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LossOutput:
    loss: torch.Tensor  # a scalar the trainer calls backward on
    # Share of anchors whose own positive scores highest; a 0-dim tensor so reading it waits for the log row
    # (a .item() here would make the host wait for the device on every micro-batch).
    accuracy: torch.Tensor
    logits: torch.Tensor | None = None


def false_negative_mask(anchor_ids: torch.Tensor, positive_ids: torch.Tensor, candidate_ids: torch.Tensor,
                        candidate_rows: torch.Tensor) -> torch.Tensor:
    """[B, C] bool: True where candidate j must not count as a negative for anchor i.

    anchor_ids/positive_ids [B] are per-text ids (equal text -> equal id); candidate_ids [C] the text ids of the
    candidates and candidate_rows [C] the row each came from (-1 for a hard negative). The own positive
    (column i) is never masked.
    """
    same_text = candidate_ids.unsqueeze(0) == positive_ids.unsqueeze(1)
    is_positive = candidate_rows >= 0
    rows = candidate_rows.clamp(min=0)
    same_anchor = is_positive.unsqueeze(0) & (anchor_ids[rows].unsqueeze(0) == anchor_ids.unsqueeze(1))
    mask = same_text | same_anchor
    own = torch.arange(anchor_ids.numel(), device=mask.device)
    mask[own, own] = False
    return mask


def info_nce(anchors: torch.Tensor, candidates: torch.Tensor, temperature: float,
             mask: torch.Tensor | None = None) -> LossOutput:
    """InfoNCE where candidates[:B] are the anchors' positives in order, candidates[B:] extra negatives.

    anchors [B, d] and candidates [C, d] should be L2-normalised (then the dot product is the cosine). The
    logits and the softmax run in float32 whatever the input dtype, so half precision cannot overflow here.
    """
    batch = anchors.size(0)
    # Outside autocast: the trainer runs the loss under autocast, which would take this matmul back to half.
    with torch.autocast(anchors.device.type, enabled=False):
        logits = anchors.float() @ candidates.float().T / temperature
        if mask is not None:
            logits = logits.masked_fill(mask, float("-inf"))
        target = torch.arange(batch, device=logits.device)
        loss = F.cross_entropy(logits, target)
    with torch.no_grad():
        accuracy = (logits.argmax(dim=1) == target).float().mean()
    return LossOutput(loss=loss, accuracy=accuracy, logits=logits)


class InfoNCELoss(nn.Module):
    """InfoNCE over in-batch negatives and hard negatives, with false negatives masked out.

    Also known as MultipleNegativesRankingLoss (sentence-transformers) or the NT-Xent/contrastive loss of
    van den Oord et al. 2018, "Representation Learning with Contrastive Predictive Coding" (arXiv:1807.03748).
    Each anchor i is scored against every candidate in the batch: all positives, then all hard negatives.
    logits = cos(anchor, candidate) / temperature (sentence-transformers' scale = 1 / temperature), and the loss
    is cross-entropy with anchor i's own positive as the target.

    A candidate that is really a positive for anchor i must not be pushed away: a duplicate of i's positive text
    (the same definition appears in two rows, or a hard negative equal to the positive), or the positive of
    another row with the same anchor text. Those logits are set to -inf before the softmax.
    """

    def __init__(self, temperature: float = 0.05, mask_false_negatives: bool = True):
        super().__init__()
        self.temperature = temperature
        self.mask_false_negatives = mask_false_negatives

    def forward(self, model: nn.Module, batch: dict[str, Any]) -> LossOutput:
        """batch: a PairCollator batch already on the model's device."""
        anchors = model(batch["anchor"])
        candidates = model(batch["candidates"])
        mask = None
        if self.mask_false_negatives:
            mask = false_negative_mask(batch["anchor_ids"], batch["positive_ids"], batch["candidate_ids"],
                                       batch["candidate_rows"])
        return info_nce(anchors, candidates, self.temperature, mask)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, scale={1 / self.temperature:g}"
