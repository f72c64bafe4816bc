from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from embedgui.engine.loss import false_negative_mask, info_nce


def unit(x):
    return F.normalize(x, dim=-1)


def test_aligned_pairs_score_lower_than_shuffled():
    torch.manual_seed(0)
    anchors = unit(torch.randn(16, 32))
    positives = unit(anchors + 0.1 * torch.randn(16, 32))
    aligned = info_nce(anchors, positives, 0.05)
    shuffled = info_nce(anchors, positives[torch.randperm(16)], 0.05)
    assert aligned.loss < shuffled.loss
    assert aligned.accuracy == 1.0 and shuffled.accuracy < 0.5


def test_loss_matches_hand_computation():
    anchors = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    candidates = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])  # two positives then one hard negative
    out = info_nce(anchors, candidates, temperature=0.5)
    # anchor 0 logits: [2, 0, 1.2]; anchor 1 logits: [0, 2, 1.6]
    l0 = -math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(1.2)))
    l1 = -math.log(math.exp(2) / (1 + math.exp(2) + math.exp(1.6)))
    assert abs(out.loss.item() - (l0 + l1) / 2) < 1e-6 and out.accuracy == 1.0


def test_duplicates_are_not_negatives():
    # rows 0 and 1 share the positive text; row 0's hard negative equals its own positive text
    anchor_ids = torch.tensor([0, 1, 2])
    positive_ids = torch.tensor([10, 10, 11])
    candidate_ids = torch.tensor([10, 10, 11, 10, 12])
    candidate_rows = torch.tensor([0, 1, 2, -1, -1])
    mask = false_negative_mask(anchor_ids, positive_ids, candidate_ids, candidate_rows)
    assert mask.tolist() == [
        [False, True, False, True, False],
        [True, False, False, True, False],
        [False, False, False, False, False],
    ]
    v = unit(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]]))
    masked = info_nce(v[:3], v, 0.05, mask)
    unmasked = info_nce(v[:3], v, 0.05)
    # without the mask the duplicate scores as high as the target: the loss is >= log(3) for rows 0 and 1
    assert masked.loss < 0.01 < unmasked.loss and masked.accuracy == 1.0


def test_same_anchor_other_positive_is_not_a_negative():
    anchor_ids = torch.tensor([0, 0, 1])  # one anchor text with two different positives
    positive_ids = torch.tensor([5, 6, 7])
    mask = false_negative_mask(anchor_ids, positive_ids, positive_ids, torch.tensor([0, 1, 2]))
    assert mask.tolist() == [[False, True, False], [True, False, False], [False, False, False]]


def test_half_precision_inputs_give_finite_loss():
    torch.manual_seed(0)
    a = unit(torch.randn(8, 16)).half()
    out = info_nce(a, a, 0.01)
    assert torch.isfinite(out.loss) and out.loss.dtype == torch.float32


def test_loss_object_takes_the_model_and_a_collated_batch():
    from embedgui.engine.loss import InfoNCELoss

    torch.manual_seed(0)
    vectors = unit(torch.randn(5, 8))
    batch = {  # an identity "model": the batch already holds the embeddings
        "anchor": vectors[:3] + 0.05, "candidates": vectors,
        "anchor_ids": torch.tensor([0, 1, 2]), "positive_ids": torch.tensor([3, 3, 4]),
        "candidate_ids": torch.tensor([3, 3, 4, 5, 3]), "candidate_rows": torch.tensor([0, 1, 2, -1, -1]),
    }
    loss = InfoNCELoss(temperature=0.1)
    out = loss(lambda x: unit(x), batch)
    mask = false_negative_mask(batch["anchor_ids"], batch["positive_ids"], batch["candidate_ids"],
                               batch["candidate_rows"])
    expected = info_nce(unit(batch["anchor"]), unit(vectors), 0.1, mask)
    assert torch.equal(out.loss, expected.loss) and float(out.accuracy) == float(expected.accuracy)
    assert mask[0].tolist() == [False, True, False, False, True]  # the duplicates of row 0's positive
    assert "scale=10" in repr(loss)
    # the trainer runs the loss under autocast; the logits still come out in full float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = loss(lambda x: unit(x), batch)
    assert under_autocast.logits.dtype == torch.float32 and torch.allclose(under_autocast.loss, out.loss)
