"""train.learn_temperature: a learned log-scale temperature in the loss, optimizer, log rows and snapshots."""

from __future__ import annotations

import math
import threading

import pytest
import torch

from embedgui.engine.callbacks import read_metrics
from embedgui.engine.config import Config
from embedgui.engine.loss import MAX_TEMPERATURE, MIN_TEMPERATURE, InfoNCELoss, MatryoshkaLoss, learned_temperature
from embedgui.engine.optimization import LOSS_PARAM_MIN_LR, build_optimizer
from embedgui.engine.trainer import Trainer, latest_snapshot
from tests.test_trainer import StopAt, make_config


def _batch(n: int = 4) -> dict:
    ids = torch.arange(n)
    return {"anchor_ids": ids, "positive_ids": ids, "candidate_ids": ids, "candidate_rows": ids}


def test_learned_temperature_is_a_parameter_clamped_with_a_gradient():
    loss = InfoNCELoss(0.05, learn_temperature=True)
    assert [name for name, _ in loss.named_parameters()] == ["log_temperature"]
    assert learned_temperature(loss) == pytest.approx(0.05)
    assert learned_temperature(MatryoshkaLoss(loss, [8])) == pytest.approx(0.05)  # found inside a wrapper
    assert learned_temperature(InfoNCELoss(0.05)) is None and list(InfoNCELoss(0.05).parameters()) == []
    torch.manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    c = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    for value, expected in ((1e-4, MIN_TEMPERATURE), (50.0, MAX_TEMPERATURE), (0.2, 0.2)):
        with torch.no_grad():
            loss.log_temperature.fill_(math.log(value))
        assert learned_temperature(loss) == pytest.approx(expected)
        loss.zero_grad()
        loss.score(a, c, _batch()).loss.backward()
        # Past a bound the gradient still arrives, so the temperature can come back into range.
        assert loss.log_temperature.grad is not None and loss.log_temperature.grad.abs() > 0
    fixed = InfoNCELoss(0.2).score(a, c, _batch()).loss
    with torch.no_grad():
        loss.log_temperature.fill_(math.log(0.2))
    assert loss.score(a, c, _batch()).loss.item() == pytest.approx(fixed.item())


def test_optimizer_gets_the_loss_parameters_without_weight_decay():
    model = torch.nn.Linear(4, 4)
    loss = InfoNCELoss(0.05, learn_temperature=True)
    config = Config()
    groups = build_optimizer(model, config, loss).param_groups
    own = [g for g in groups if any(p is loss.log_temperature for p in g["params"])]
    assert len(own) == 1 and own[0]["weight_decay"] == 0.0 and own[0]["lr"] == max(config.optim.lr, LOSS_PARAM_MIN_LR)
    assert len(build_optimizer(model, config, InfoNCELoss(0.05)).param_groups) == 2


def test_config_checks_the_start_value_and_gradient_caching():
    config = Config()
    config.train.learn_temperature = True
    assert not config.validate()
    config.train.temperature = 5.0  # allowed when fixed, outside the learned range
    assert any("train.temperature: 5.0 is outside 0.01-1" in e for e in config.validate())
    config.train.temperature, config.train.gradcache_chunk = 0.05, 4
    assert any(e.startswith("train.learn_temperature: gradient caching") for e in config.validate())


def test_temperature_is_learned_logged_and_restored_on_resume(tiny_bert, tmp_path):
    common = {"train": {"steps_per_epoch": 4, "batch_size": 6, "learn_temperature": True, "temperature": 0.05}}
    straight = Trainer(make_config(tiny_bert, tmp_path / "a", **common)).fit()
    assert straight.status == "finished"
    rows = read_metrics(tmp_path / "a" / "runs" / "run" / "metrics.jsonl")
    temps = [r["temperature"] for r in rows if r.get("kind") == "train"]
    assert len(temps) == 4
    assert all(MIN_TEMPERATURE <= t <= MAX_TEMPERATURE for t in temps)
    assert temps[0] != 0.05 and len(set(temps)) == 4  # it moves every step

    stop = threading.Event()
    run_b = tmp_path / "b" / "runs" / "run"
    first = Trainer(make_config(tiny_bert, tmp_path / "b", **common), callbacks=[StopAt(2, stop)]).fit(stop)
    assert first.step == 2 and latest_snapshot(run_b).name == "step-00000002"
    resumed_cfg = make_config(tiny_bert, tmp_path / "b", **common)
    resumed_cfg.train.resume = True
    trainer = Trainer(resumed_cfg)
    assert trainer.fit().step == 4
    resumed = [r["temperature"] for r in read_metrics(run_b / "metrics.jsonl") if r.get("kind") == "train"]
    # Step 3 starts from the snapshot's temperature: restarting from 0.05 would give a different value.
    assert resumed == pytest.approx(temps, rel=1e-6, abs=0)
    assert learned_temperature(trainer.loss) == pytest.approx(temps[-1], rel=1e-6)


def test_fixed_temperature_is_not_logged(tiny_bert, tmp_path):
    Trainer(make_config(tiny_bert, tmp_path, train={"steps_per_epoch": 2})).fit()
    rows = read_metrics(tmp_path / "runs" / "run" / "metrics.jsonl")
    assert rows and all("temperature" not in r for r in rows)
