"""The performance levers that are not the loss: thread settings and length-grouped batches (docs/performance.md)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from embedgui.engine.config import Config
from embedgui.engine.data import PairCollator, batches_per_pass, make_loader, read_pairs

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "sample_pairs.jsonl"

THREADS = """
import os, torch
from embedgui.engine import device
{patch}
print(torch.get_num_threads())
print(device.configure_threads())
print(torch.get_num_threads())
"""


def threads(patch: str = "", **env: str) -> tuple[str, int, int]:
    """(the decision in words, torch threads after it, torch's default) in a fresh process."""
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", THREADS.format(patch=patch)], capture_output=True, text=True,
                          cwd=ROOT, env={**clean, "PYTHONPATH": str(ROOT), **env}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    default, reason, count = done.stdout.strip().splitlines()[-3:]
    return reason, int(count), int(default)


def test_threads_follow_usable_cores_and_never_override_the_user():
    idle = "device._busy_cores = lambda: 0\n"
    reason, count, _ = threads(idle + "device.usable_cores = lambda: 1")
    assert count == 1 and "1 usable core" in reason
    reason, count, default = threads(idle + "device.usable_cores = lambda: 10_000")
    assert count == default  # never raised above torch's own default
    busy = "device._busy_cores = lambda: 9\ndevice.usable_cores = lambda: 4\n"
    # cores other processes keep busy are left to them, when a quick measurement agrees ...
    reason, count, _ = threads(busy + "device._faster_thread_count = lambda many, few: few")
    assert count == 1 and "9 busy" in reason
    # ... and kept when it does not (the load average lags behind a process that just ended)
    reason, count, default = threads(busy + "device._faster_thread_count = lambda many, few: many")
    assert count == min(4, default)
    reason, count, _ = threads(idle + "device.usable_cores = lambda: 1", OMP_NUM_THREADS="2")
    assert count == 2 and "OMP_NUM_THREADS=2" in reason


def padding_share(loader, batches: int) -> float:
    real = padded = 0
    for batch in itertools.islice(iter(loader), batches):
        for side in ("anchor", "candidates"):
            mask = batch[side]["attention_mask"]
            real += int(mask.sum())
            padded += mask.numel()
    return real / padded


def test_length_grouping_is_on_by_default_and_cuts_padding_on_the_glossary(tiny_bert):
    from transformers import AutoTokenizer

    assert Config().train.group_by_length
    rows, _ = read_pairs(SAMPLE)
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    n = 3 * batches_per_pass(len(rows), 16)
    plain = padding_share(make_loader(rows, PairCollator(tok, 64), batch_size=16, seed=1), n)
    grouped = padding_share(make_loader(rows, PairCollator(tok, 64), batch_size=16, seed=1, group_by_length=True), n)
    assert grouped > plain + 0.1, (plain, grouped)


@pytest.mark.parametrize("group", [False, True, "similar"])
def test_loader_resumes_at_any_batch(tiny_bert, group):
    from transformers import AutoTokenizer

    rows, _ = read_pairs(SAMPLE)
    tok = AutoTokenizer.from_pretrained(tiny_bert)

    def anchors(start: int, count: int) -> list[list[int]]:
        loader = make_loader(rows, PairCollator(tok, 64), batch_size=16, seed=3, start_batch=start,
                             group_by_length=bool(group), similar_batches=group == "similar")
        return [b["anchor"]["input_ids"].tolist() for b in itertools.islice(iter(loader), count)]

    assert anchors(0, 25)[11:] == anchors(11, 14)
