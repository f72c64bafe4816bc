"""InfoNCE over in-batch negatives and hard negatives, with false negatives masked out.

Also known as MultipleNegativesRankingLoss (sentence-transformers) or the NT-Xent/contrastive loss of
van den Oord et al. 2018, "Representation Learning with Contrastive Predictive Coding" (arXiv:1807.03748).
Each anchor i is scored against every candidate in the batch: all positives, then all hard negatives.
logits = cos(anchor, candidate) / temperature (sentence-transformers calls 1/temperature the scale), and the
loss is cross-entropy with anchor i's own positive as the target.

A candidate that is really a positive for anchor i must not be pushed away: a duplicate of i's positive text
(the same definition appears in two rows, or a hard negative equal to the positive), or the positive of another
row with the same anchor text. Those logits are set to -inf before the softmax.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class LossOutput:
    loss: torch.Tensor
    accuracy: float  # share of anchors whose own positive scores highest among the unmasked candidates
    logits: torch.Tensor


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
    logits = anchors.float() @ candidates.float().T / temperature
    if mask is not None:
        logits = logits.masked_fill(mask, float("-inf"))
    target = torch.arange(batch, device=logits.device)
    loss = F.cross_entropy(logits, target)
    with torch.no_grad():
        accuracy = (logits.argmax(dim=1) == target).float().mean().item()
    return LossOutput(loss=loss, accuracy=accuracy, logits=logits)
