"""The app's pure parts: form <-> config, figures from a history, tick outputs from a snapshot, hosted checks."""

from __future__ import annotations

import json
from pathlib import Path

from embedgui.engine.config import Config, config_from_dict
from embedgui.engine.runner import RunSnapshot
from embedgui.ui import config_tab as ct
from embedgui.ui.charts import compare_figure, training_figures
from embedgui.ui.i18n import FIELD_HELP, TEXT, t
from embedgui.ui.train_tab import progress_html, tick_outputs


def test_every_config_field_has_a_form_field_and_help_in_both_languages():
    specs = ct.field_specs()
    paths = [s.path for s in specs]
    flat = set()
    for key, value in Config().to_dict().items():
        flat |= {f"{key}.{sub}" for sub in value} if isinstance(value, dict) else {key}
    assert set(paths) == flat and len(paths) == len(flat)
    assert set(FIELD_HELP) == flat
    assert all(en and ko and en != ko for en, ko in FIELD_HELP.values())
    assert all(en and ko for en, ko in TEXT.values())


def test_form_round_trip_keeps_every_value():
    config = config_from_dict({"model_id": "x/y", "dtype": "bfloat16", "train": {"batch_size": 7, "steps_per_epoch": 9,
                               "temperature": 0.1}, "data": {"pairs_path": "p.jsonl", "eval_split": 0.2},
                               "hf": {"default_task": "classification"}})
    values = ct.config_to_values(config)
    again, errors = ct.values_to_config(values)
    assert errors == [] and again.to_dict() == config.to_dict()


def test_form_values_as_widgets_send_them():
    values = ct.config_to_values(Config())
    paths = [s.path for s in ct.field_specs()]
    # gr.Number sends floats, emptied text boxes send "", emptied optional numbers send None
    values[paths.index("train.batch_size")] = 12.0
    values[paths.index("tokenizer_id")] = "  "
    values[paths.index("train.steps_per_epoch")] = None
    values[paths.index("train.epochs")] = None  # a required box emptied: falls back to the default
    config, errors = ct.values_to_config(values)
    assert errors == []
    assert config.train.batch_size == 12 and isinstance(config.train.batch_size, int)
    assert config.tokenizer_id is None and config.train.steps_per_epoch is None and config.train.epochs == 1


def test_form_errors_are_listed_per_field():
    values = ct.config_to_values(Config())
    paths = [s.path for s in ct.field_specs()]
    values[paths.index("train.batch_size")] = 0
    values[paths.index("optim.lr")] = 5.0
    config, errors = ct.values_to_config(values)
    assert config is None and len(errors) == 2
    text = ct.validation_markdown("ko", errors)
    assert "`train.batch_size`" in text and "`optim.lr`" in text and t("ko", "config.errors") in text


def test_load_config_file(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"train": {"batch_size": 3}}))
    values, errors = ct.load_config_file(str(good))
    assert errors == [] and values[[s.path for s in ct.field_specs()].index("train.batch_size")] == 3
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"train": {"bach_size": 3}}))
    values, errors = ct.load_config_file(str(bad))
    assert values is None and errors == ["train.bach_size: unknown key; did you mean 'batch_size'?"]


def test_hosted_mode_refuses_remote_code_and_outside_files(tmp_path):
    from embedgui.ui.context import SAMPLE_PAIRS, AppContext

    ctx = AppContext.create(tmp_path / "ws", hosted=True)
    config = Config()
    config.output.save_dir = str(ctx.runs_dir)
    config.data.pairs_path = str(SAMPLE_PAIRS)
    assert ct.hosted_problems(config, ctx) == []
    config.hf.trust_remote_code = True
    config.data.eval_path = "/etc/passwd"
    config.output.save_dir = "/tmp/elsewhere"
    config.model_id = "~/models/mine"
    config.tokenizer_id = "../tok"
    problems = ct.hosted_problems(config, ctx)
    assert [p.split(":")[0] for p in problems] == ["hf.trust_remote_code", "model_id", "tokenizer_id",
                                                    "data.eval_path", "output.save_dir"]


HISTORY = [{"step": s, "epoch": 1, "loss": 2.0 / s, "acc": 0.1 * s, "lr": 1e-5 * s, "steps_per_s": 2.0}
           for s in range(1, 6)]


def test_figures_from_history():
    titles = {"loss": "Loss", "acc": "Acc", "lr": "LR", "eval": "Eval"}
    evals = [{"step": 5, "recall@1": 0.5, "ndcg@10": 0.7}]
    loss, acc, lr, ev = training_figures(HISTORY, evals, titles)
    assert list(loss.data[0].x) == [1, 2, 3, 4, 5] and list(loss.data[0].y) == [2.0, 1.0, 2 / 3, 0.5, 0.4]
    assert list(acc.data[0].y) == [0.1, 0.2, 0.30000000000000004, 0.4, 0.5]
    assert [tr.name for tr in ev.data] == ["recall@1", "ndcg@10"] and list(ev.data[1].y) == [0.7]
    bars = compare_figure({"recall@1": 0.4}, {"recall@1": 0.6}, ["recall@1"], "t")
    assert [list(b.y) for b in bars.data] == [[0.4], [0.6]]


def test_tick_outputs_from_snapshot():
    snap = RunSnapshot(status="running", step=5, max_steps=20, epoch=1, epochs=2, device="cpu",
                       precision="bfloat16", run_dir="/r", message="Training on cpu", started_at=100.0,
                       logs=HISTORY, log_lines=["a", "b"])
    progress, message, loss, acc, lr, ev, log = tick_outputs(snap, "en")
    assert 'data-status="running"' in progress and "step 5/20" in progress and "epoch 1/2" in progress
    assert "2.00 it/s" in progress and "ETA 0:00:07" in progress  # 15 steps left at 2 it/s
    assert "cpu · bfloat16" in progress and "width:25.0%" in progress
    assert len(loss.data[0].x) == 5 and log == "a\nb"
    ko = progress_html(RunSnapshot(status="stopped", step=5, max_steps=20), "ko")
    assert "중지됨" in ko and 'data-status="stopped"' in ko


def test_engine_assets_exist():
    from embedgui.ui.context import SAMPLE_GLOSSARY, SAMPLE_PAIRS

    assert Path(SAMPLE_PAIRS).exists() and Path(SAMPLE_GLOSSARY).exists()


def test_hosted_app_refuses_paths_outside_its_folders(tmp_path):
    from embedgui.ui.context import SAMPLE_PAIRS, AppContext

    ctx = AppContext.create(tmp_path / "ws", hosted=True)
    assert ctx.refuse_path("sentence-transformers/all-MiniLM-L6-v2", "model") is None
    assert ctx.refuse_path(str(SAMPLE_PAIRS), "pairs") is None
    assert ctx.refuse_path(str(ctx.data_dir / "pairs.jsonl"), "pairs") is None
    assert ctx.refuse_path("/etc/passwd", "corpus").startswith("corpus: /etc/passwd is outside")
    assert ctx.refuse_path(str(ctx.data_dir / ".." / ".." / "secret"), "pairs") is not None
    assert AppContext.create(tmp_path / "ws2", hosted=False).refuse_path("/etc/passwd", "corpus") is None


def test_search_cache_sees_a_model_retrained_in_place(tiny_bert, tmp_path):
    import shutil

    from embedgui.engine.modeling import load_embedder
    from embedgui.ui.search_tab import IndexCache, search_tables

    model_dir = tmp_path / "run"
    shutil.copytree(tiny_bert, model_dir)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the model\na vector of text\nlearning rate\n")
    cache = IndexCache()
    first, _, message = search_tables(cache, "the model", 3, str(model_dir), "", str(corpus), None)
    assert message == "" and first["text"].iloc[0] == "the model"
    again, _, _ = search_tables(cache, "the model", 3, str(model_dir), "", str(corpus), None)
    assert again.equals(first)  # cached
    other = load_embedder(str(tiny_bert), device="cpu")
    with __import__("torch").no_grad():
        for p in other.backbone.parameters():
            p.mul_(-1.5)
    other.save(model_dir)  # "retrained" in place
    changed, _, _ = search_tables(cache, "the model", 3, str(model_dir), "", str(corpus), None)
    assert not changed["score"].equals(first["score"])


def test_long_histories_are_thinned_but_keep_the_latest_point():
    from embedgui.ui.charts import MAX_POINTS, line_figure

    rows = [{"step": s, "loss": 1.0 / s} for s in range(1, 10_002)]
    fig = line_figure(rows, ["loss"], "Loss")
    xs = list(fig.data[0].x)
    assert len(xs) <= MAX_POINTS + 1 and xs[0] == 1 and xs[-1] == 10_001 and xs == sorted(xs)
