"""The app's pure parts: form <-> config, figures from a history, tick outputs from a snapshot, hosted checks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from embedgui.engine.config import Config, config_from_dict
from embedgui.engine.runner import RunSnapshot
from embedgui.ui import config_tab as ct
from embedgui.ui.charts import compare_figure, training_figures
from embedgui.ui.i18n import FIELD_HELP, FIELD_LABELS, TEXT, t
from embedgui.ui.train_view import chart_titles, progress_html


def test_every_config_field_has_a_form_field_and_help_in_both_languages():
    specs = ct.field_specs()
    paths = [s.path for s in specs]
    flat = set()
    for key, value in Config().to_dict().items():
        flat |= {f"{key}.{sub}" for sub in value} if isinstance(value, dict) else {key}
    assert set(paths) == flat - {"train.resume"} and len(paths) == len(flat) - 1  # resume is an action
    assert set(FIELD_HELP) == flat and set(FIELD_LABELS) == flat
    assert all(en and ko and en != ko for en, ko in FIELD_LABELS.values())
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


def test_progress_line_and_charts_from_a_snapshot():
    snap = RunSnapshot(status="running", step=5, max_steps=20, epoch=1, epochs=2, device="cpu",
                       precision="bfloat16", run_dir="/r", message="Training on cpu", started_at=100.0,
                       logs=HISTORY, log_lines=["a", "b"])
    progress = progress_html(snap, "en")
    loss = training_figures(snap.logs, snap.evals, chart_titles("en", False))[0]
    assert 'data-status="running"' in progress and "step 5/20" in progress and "epoch 1/2" in progress
    assert "2.00 it/s" in progress and "ETA 0:00:07" in progress  # 15 steps left at 2 it/s
    assert "cpu · bfloat16" in progress and "width:25.0%" in progress
    assert len(loss.data[0].x) == 5
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


def test_empty_optional_boxes_stay_not_set():
    paths = [s.path for s in ct.field_specs()]
    values = ct.config_to_values(Config())
    optional_numbers = [s.path for s in ct.field_specs() if s.optional and s.kind in (int, float)]
    assert {"train.steps_per_epoch", "data.max_hard_negatives", "train.pad_to_multiple_of"} <= set(optional_numbers)
    # optional numbers with a default
    with_default = {"optim.max_grad_norm": "1.0", "data.mine_hard_negatives": "1", "optim.short_run_steps": "64"}
    for path in optional_numbers:
        assert values[paths.index(path)] == with_default.get(path, ""), path  # shown empty, not 0
    config, errors = ct.values_to_config(values)
    assert errors == [] and config.data.max_hard_negatives is None and config.train.steps_per_epoch is None
    assert config.data.mine_hard_negatives == 1
    values[paths.index("data.max_hard_negatives")] = " 2 "
    values[paths.index("optim.max_grad_norm")] = ""
    values[paths.index("data.mine_hard_negatives")] = ""
    values[paths.index("optim.short_run_steps")] = ""
    config, errors = ct.values_to_config(values)
    assert config.data.max_hard_negatives == 2 and config.optim.max_grad_norm is None
    assert config.data.mine_hard_negatives is None  # emptied: no mining, not the default again
    assert config.optim.short_run_steps is None  # emptied: always optim.lr
    values[paths.index("train.steps_per_epoch")] = "many"
    config, errors = ct.values_to_config(values)
    assert config is None and errors[0].startswith("train.steps_per_epoch:")


def test_saved_config_never_resumes(tmp_path):
    from embedgui.ui.context import AppContext

    ctx = AppContext.create(tmp_path / "ws", hosted=False)
    config = Config()
    config.train.resume = True
    ct.save_config(ctx, config)
    assert json.loads(ctx.config_path.read_text())["train"]["resume"] is False
    assert ct.workspace_config(ctx).train.resume is False


def test_progress_eta_is_smoothed_and_elapsed_stops_when_the_run_ends():
    from embedgui.ui.train_view import smoothed_speed

    logs = [{"step": s, "loss": 1.0, "acc": 0.5, "steps_per_s": 100.0 if s == 10 else 2.0, "elapsed_s": s / 2}
            for s in range(1, 11)]
    assert abs(smoothed_speed(logs) - 2.0) < 1e-9  # one fast step does not swing the ETA
    running = RunSnapshot(status="running", step=10, max_steps=30, started_at=1000.0, logs=logs)
    assert "ETA 0:00:10" in progress_html(running, "en", now=1005.0)
    ended = RunSnapshot(status="finished", step=10, max_steps=10, started_at=1000.0, logs=logs)
    assert "elapsed 0:00:05" in progress_html(ended, "en", now=99999.0)
    with_reason = RunSnapshot(status="running", step=1, max_steps=2, device="cpu", precision="bfloat16",
                              precision_reason="auto: CPU runs bfloat16 natively", logs=logs)
    assert "auto: CPU runs bfloat16 natively" in progress_html(with_reason, "en")
    assert "acc 0.500 ·" not in progress_html(running, "en")  # rows without a rate show none
    logs[-1]["lr"] = 8e-5
    assert "loss 1.0000 · acc 0.500 · lr 8.0e-05" in progress_html(running, "en")  # the rate the last step used


def test_smoothed_loss_line():
    from embedgui.ui.charts import ema

    assert ema([1.0, 0.0, 0.0], alpha=0.5) == [1.0, 0.5, 0.25]
    titles = {"loss": "Loss", "acc": "Acc", "lr": "LR", "eval": "Eval", "smoothed": "EMA", "step": "스텝"}
    loss, *_ = training_figures(HISTORY, [], titles)
    assert [tr.name for tr in loss.data] == ["loss", "EMA"] and loss.layout.xaxis.title.text == "스텝"


def _app(tmp_path, run=None):
    from embedgui.ui.app import create_app
    from embedgui.ui.context import AppContext

    ctx = AppContext.create(tmp_path / "ws", hosted=False)
    if run is not None:
        ctx.run = run
    return create_app(ctx)


def test_every_registered_component_has_english_and_korean_text(tmp_path):
    demo = _app(tmp_path)
    texts = demo.ui.texts
    assert texts.missing() == []
    assert len(texts.components) > 100  # every tab registers its widgets
    en, ko = texts.updates("en"), texts.updates("ko")
    assert set(en) == set(ko) == set(texts.components)
    cfg = demo.ui.tabs["config"]
    assert all(c in ko for c in cfg.fields)  # every config field's label and help follow the language
    batch = cfg.field("train.batch_size")
    assert ko[batch]["label"] == "배치 크기" and en[batch]["label"] == "Batch size"
    assert en[batch]["info"].startswith("train.batch_size")


class _FakeRun:
    def __init__(self, snap):
        self.snap, self.active, self.current_dir = snap, snap.active, snap.run_dir or None

    def snapshot(self):
        return self.snap


def test_start_and_resume_are_disabled_while_a_run_is_going(tmp_path):
    running = RunSnapshot(status="running", step=3, max_steps=10, logs=HISTORY[:3], run_dir=str(tmp_path / "r"))
    demo = _app(tmp_path, _FakeRun(running))
    train = demo.ui.tabs["train"]
    out = train.tick("en", None, False, "", None)
    assert out[train.start_btn]["interactive"] is False and out[train.resume_btn]["interactive"] is False
    assert 'data-status="running"' in out[train.progress]
    demo = _app(tmp_path, _FakeRun(RunSnapshot(status="stopped", step=3, max_steps=10)))
    train = demo.ui.tabs["train"]
    out = train.tick("ko", None, False, "", None)
    assert out[train.start_btn]["interactive"] is True and "중지됨" in out[train.progress]


def test_viewing_an_older_run_shows_its_own_progress_line_and_log(tmp_path):
    """Was: "View charts" of the first run drew its charts under the second run's progress line ("finished · step
    150/150") and log, so one screen mixed two runs. Also while another run trains, its ticks keep out."""
    import json

    old = tmp_path / "ws" / "runs" / "first"
    old.mkdir(parents=True)
    (old / "train_config.json").write_text(json.dumps({"train": {"epochs": 1, "steps_per_epoch": 4}}))
    (old / "metrics.jsonl").write_text("".join(json.dumps({"kind": "train", **row}) + "\n" for row in HISTORY[:4]))
    (old / "metrics_summary.json").write_text(json.dumps({"status": "finished", "steps": 4, "max_steps": 4}))
    (old / "train.log").write_text("INFO first run's own line\nstep 1/4  loss 2.0\nINFO Finished at step 4/4\n")
    running = RunSnapshot(status="running", step=7, max_steps=150, logs=HISTORY, run_dir=str(tmp_path / "second"),
                          log_lines=["INFO second run's line"])
    demo = _app(tmp_path, _FakeRun(running))
    train = demo.ui.tabs["train"]
    out = train.tick("en", None, False, str(old), None)
    assert 'data-step="4"' in out[train.progress] and "4/4" in out[train.progress], out[train.progress]
    assert out[train.log] == "INFO first run's own line\nINFO Finished at step 4/4"  # its own, without step rows
    again = train.tick("en", out[train.last_drawn], False, str(old), None)  # nothing new: the clock only
    assert "150" not in str(again.get(train.progress, ""))  # the training run's line does not come back
    back = train.tick("en", out[train.last_drawn], False, "", None)  # back to the run that trains
    assert 'data-step="7"' in back[train.progress] and back[train.log] == "INFO second run's line"


def test_buttons_that_could_do_nothing_are_off(tmp_path):
    """Was: Stop (bright red) and Resume were on with no run at all, and "Resume this run" on for a finished run,
    each click answering only that there was nothing to do."""
    import json

    demo = _app(tmp_path, _FakeRun(RunSnapshot(status="idle")))
    train = demo.ui.tabs["train"]
    out = train.tick("en", None, False, "", None)
    assert out[train.stop_btn]["interactive"] is False and out[train.start_btn]["interactive"] is True
    listed = train.list_updates("en")
    assert listed[train.resume_btn]["interactive"] is False and listed[train.resume_run_btn]["interactive"] is False
    folders = tmp_path / "ws" / "runs"
    for name, snapshot in (("a-finished", False), ("b-stopped", True)):
        (folders / name).mkdir(parents=True)
        (folders / name / "train_config.json").write_text(json.dumps({"train": {"epochs": 1}}))
        status = {"status": "stopped" if snapshot else "finished", "steps": 3, "max_steps": 3 + 5 * snapshot}
        (folders / name / "metrics_summary.json").write_text(json.dumps(status))
        if snapshot:
            (folders / name / "checkpoints" / "step-00000003").mkdir(parents=True)
            (folders / name / "checkpoints" / "step-00000003" / "model.pt").write_bytes(b"w")
    listed = train.list_updates("en", picked="a-finished")
    assert listed[train.resume_btn]["interactive"] is True  # the stopped run can go on
    assert listed[train.resume_run_btn]["interactive"] is False  # the picked one is finished
    assert train.pick_buttons("b-stopped")[train.resume_run_btn]["interactive"] is True
    assert train.pick_buttons("a-finished")[train.resume_run_btn]["interactive"] is False
    demo = _app(tmp_path, _FakeRun(RunSnapshot(status="running", step=1, max_steps=9, run_dir=str(folders / "c"))))
    train = demo.ui.tabs["train"]
    out = train.tick("en", None, False, "", None)
    assert out[train.stop_btn]["interactive"] is True and out[train.resume_btn]["interactive"] is False


def test_resume_comes_back_when_the_stopped_runs_thread_has_exited(tmp_path):
    """The run's status turns "stopped" before its thread has tidied up and exited: a tick in that gap drew the
    list with the run still going (Resume off), and no later tick drew it again, so Resume stayed off."""
    import json

    folder = tmp_path / "ws" / "runs" / "r"
    (folder / "checkpoints" / "step-00000003").mkdir(parents=True)
    (folder / "checkpoints" / "step-00000003" / "model.pt").write_bytes(b"w")
    (folder / "train_config.json").write_text(json.dumps({"train": {"epochs": 1}}))
    (folder / "metrics_summary.json").write_text(json.dumps({"status": "stopped", "steps": 3, "max_steps": 8}))
    run = _FakeRun(RunSnapshot(status="stopped", step=3, max_steps=8, run_dir=str(folder)))
    run.active, run.current_dir = True, str(folder)  # the thread is still in its clean-up
    demo = _app(tmp_path, run)
    train = demo.ui.tabs["train"]
    first = train.tick("en", None, False, "", None)
    assert first[train.resume_btn]["interactive"] is False
    run.active = False  # the thread has exited
    later = train.tick("en", first[train.last_drawn], False, "", "r")
    assert later[train.resume_btn]["interactive"] is True and later[train.resume_run_btn]["interactive"] is True


def test_the_start_notice_warns_about_korean_data_named_relative_to_the_workspace(tmp_path, monkeypatch):
    """The notice rebuilt the config without its folder: `data/ko.jsonl` was looked for in the working directory
    (on a hosted app an empty one), so Start gave no language warning where the Config tab gave one."""
    import json

    from embedgui.ui import config_tab as ct

    class Starting(_FakeRun):
        def start(self, config, owner=None):
            self.started = config

    monkeypatch.chdir(tmp_path)  # not the workspace
    demo = _app(tmp_path, Starting(RunSnapshot(status="idle")))
    train, ctx = demo.ui.tabs["train"], demo.ui.ctx
    (ctx.data_dir / "ko.jsonl").write_text("".join(json.dumps({"anchor": f"용어 {i}", "positive": f"설명 {i}"},
                                                              ensure_ascii=False) + "\n" for i in range(8)))
    values = ct.config_to_values(ct.workspace_config(ctx))
    values[[spec.path for spec in ct.field_specs()].index("data.pairs_path")] = "data/ko.jsonl"
    out = train.start("en", "", *values)
    assert "English-only" in out[train.notice] or "multilingual" in out[train.notice], out[train.notice]


def test_ticks_under_load_send_only_what_changed(tmp_path, monkeypatch):
    """Many open pages polling a run: an unchanged tick sends the progress line only, and charts follow a page
    at most every CHART_SECONDS while the run trains (serialising them per page per step starved training)."""
    from embedgui.ui import train_tab

    clock = [1000.0]
    monkeypatch.setattr(train_tab.time, "monotonic", lambda: clock[0])
    run = _FakeRun(RunSnapshot(status="running", step=3, max_steps=10, logs=HISTORY[:3], run_dir=str(tmp_path)))
    demo = _app(tmp_path, run)
    train = demo.ui.tabs["train"]
    first = train.tick("en", None, False, "", None)
    assert train.loss_plot in first
    again = train.tick("en", first[train.last_drawn], False, "", None)
    assert set(again) == {train.progress}  # nothing new: the clock only
    run.snap = RunSnapshot(status="running", step=4, max_steps=10, logs=HISTORY[:4], run_dir=str(tmp_path))
    soon = train.tick("en", first[train.last_drawn], False, "", None)
    assert train.progress in soon and train.loss_plot not in soon  # a new step, but the charts just went out
    clock[0] += train_tab.CHART_SECONDS
    later = train.tick("en", soon[train.last_drawn], False, "", None)
    assert train.loss_plot in later
    run.snap = RunSnapshot(status="finished", step=10, max_steps=10, logs=HISTORY, run_dir=str(tmp_path))
    run.active = False
    end = train.tick("en", later[train.last_drawn], False, "", None)
    assert train.loss_plot in end  # the final state is always drawn


def test_pages_poll_less_often_while_many_are_open_and_as_often_again_when_they_leave(tmp_path, monkeypatch):
    from embedgui.ui import train_tab

    clock = [1000.0]
    monkeypatch.setattr(train_tab.time, "monotonic", lambda: clock[0])
    run = _FakeRun(RunSnapshot(status="running", step=3, max_steps=10, logs=HISTORY[:3], run_dir=str(tmp_path)))
    train = _app(tmp_path, run).ui.tabs["train"]
    last = {}
    for page in range(train_tab.BUSY_PAGES):  # a few pages: every second, nothing to change
        out = train.tick("en", None, False, "", None, f"page-{page}")
        assert train.timer not in out
        last[page] = out[train.last_drawn]
    crowded = train.tick("en", None, False, "", None, "one-page-too-many")
    assert crowded[train.timer].value == 2.0 and crowded[train.last_drawn][3] == 2.0
    unchanged = train.tick("en", last[0], False, "", None, "page-0")  # an old page hears it on its next tick
    assert unchanged[train.timer].value == 2.0 and unchanged[train.last_drawn][3] == 2.0
    assert train.tick("en", unchanged[train.last_drawn], False, "", None, "page-0").get(train.timer) is None
    clock[0] += train_tab.PAGE_SECONDS + 1  # the others left: back to every second
    alone = train.tick("en", unchanged[train.last_drawn], False, "", None, "page-0")
    assert alone[train.timer].value == 1.0


def test_english_only_model_on_korean_data_is_flagged(tmp_path):
    from embedgui.ui.train_tab import language_warning

    pairs = tmp_path / "ko.jsonl"
    pairs.write_text("\n".join(json.dumps({"anchor": f"용어 {i}", "positive": f"정의 {i}"}, ensure_ascii=False)
                               for i in range(20)), encoding="utf-8")
    config = Config()
    config.model_id = "sentence-transformers/all-MiniLM-L6-v2"
    config.data.pairs_path = str(pairs)
    assert "100%" in language_warning(config, "en") and "multilingual" in language_warning(config, "en")
    assert "다국어" in language_warning(config, "ko")
    config.model_id = "intfloat/multilingual-e5-small"
    assert language_warning(config, "en") == ""
    config.model_id = "sentence-transformers/all-MiniLM-L6-v2"
    config.data.pairs_path = str(Path(__file__).parent.parent / "assets" / "sample_pairs.jsonl")
    assert language_warning(config, "en") == ""


def test_honest_evaluation_notes(tmp_path):
    from embedgui.ui.eval_tab import honesty_notes

    assert "Only 8 queries" in honesty_notes("some/model", "p.jsonl", 8, "en")[0]
    assert honesty_notes("some/model", "p.jsonl", 500, "en") == []
    run = tmp_path / "run"
    run.mkdir()
    pairs = tmp_path / "train.jsonl"
    pairs.write_text('{"anchor": "a", "positive": "b"}\n')
    config = Config()
    config.data.pairs_path = str(pairs)
    config.output.save_dir, config.output.save_name = str(tmp_path), "run"
    config.save(run / "train_config.json")
    (run / "eval_pairs.jsonl").write_text('{"anchor": "c", "positive": "d"}\n')
    assert "memorisation" in honesty_notes(str(run), str(pairs), 500, "en")[0]
    assert "Held-out" in honesty_notes(str(run), str(run / "eval_pairs.jsonl"), 500, "en")[0]


def test_search_hits_show_their_term_and_the_default_corpus_has_the_held_out_rows(tmp_path):
    from embedgui.ui.search_tab import merged_corpus, terms_of

    train = tmp_path / "train.jsonl"
    held = tmp_path / "held.jsonl"
    train.write_text('{"anchor": "GPU", "positive": "a graphics processor"}\n')
    held.write_text('{"anchor": "CPU", "positive": "a central processor"}\n')
    merged = merged_corpus([str(train), str(held)], tmp_path / "corpus.jsonl")
    assert terms_of(merged) == {"a graphics processor": "GPU", "a central processor": "CPU"}
    assert merged_corpus([str(train), "", str(tmp_path / "missing.jsonl")], tmp_path / "c2.jsonl") == str(train)


def test_runs_table_in_both_languages():
    from embedgui.engine.runs import RunInfo
    from embedgui.ui.train_view import runs_table

    info = RunInfo(name="20261125-143210-m", path="/r", status="finished", step=10, max_steps=10, created=0.0,
                   model_id="m", pairs_path="/d/pairs.jsonl", rows=80,
                   settings={"batch_size": 16, "lr": 5e-5, "precision": "float32"},
                   final_eval={"recall@1": 0.5, "ndcg@10": 0.75}, has_model=True)
    en, ko = runs_table([info], "en"), runs_table([info], "ko")
    assert list(en.columns)[:3] == ["run", "status", "steps"] and list(ko.columns)[1] == "상태"
    row = en.iloc[0].tolist()
    assert row[:5] == ["20261125-143210-m", "finished", "10/10", "pairs.jsonl", 80]
    assert "batch 16" in row[5] and "recall@1 0.500" in row[6] and ko.iloc[0, 1] == "완료"
    assert "lr 5e-05 · float32" in row[5]  # trained at the rate set
    info.settings["peak_lr"] = 8e-5  # a short run's raised peak (optim.short_run_steps)
    assert "lr 5e-05 → 8e-05 · float32" in runs_table([info], "en").iloc[0, 5]


def test_delete_asks_first_and_refuses_names_outside_the_runs_folder(tmp_path):
    demo = _app(tmp_path)
    train, ctx = demo.ui.tabs["train"], demo.ui.ctx
    run = ctx.runs_dir / "20261125-143210-m"
    run.mkdir()
    config = Config()
    config.output.save_dir, config.output.save_name = str(ctx.runs_dir), run.name
    config.save(run / "train_config.json")
    asked = train.ask_delete("en", run.name)
    assert asked[train.confirm_row]["visible"] is True and run.exists()  # nothing deleted before the confirmation
    refused = train.delete("en", "", "../ws", "")
    assert "Error" in refused[train.runs_message] and ctx.workspace.exists()
    done = train.delete("en", "", run.name, "", str(run / "eval_pairs.jsonl"))
    assert not run.exists() and done[train.confirm_row]["visible"] is False
    assert done[train.runs].empty
    # the Evaluate and Search tabs no longer point at the deleted run (or its held-out rows)
    ev, se = demo.ui.tabs["eval"], demo.ui.tabs["search"]
    assert done[ev.model]["value"] is None and done[se.model]["value"] is None
    assert run.name not in done[ev.pairs]


def _in_thread(fn, *args, **kwargs):
    """Run a handler as Gradio does (in a worker thread); returns (thread, box holding its result)."""
    import threading

    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("out", fn(*args, **kwargs)), daemon=True)
    thread.start()
    return thread, box


def _paused_progress(marker: str):
    """A progress callback that, at the first description starting with marker, waits until the test pressed Stop."""
    import threading

    reached, pressed, seen = threading.Event(), threading.Event(), []

    def progress(share, desc=""):
        seen.append(desc)
        if desc.startswith(marker) and not reached.is_set():
            reached.set()
            assert pressed.wait(30)

    return progress, reached, pressed, seen


def test_compose_started_from_the_app_can_be_stopped(tmp_path):
    demo = _app(tmp_path)
    data = demo.ui.tabs["data"]
    table = tmp_path / "big.csv"
    table.write_text("term,definition\n" + "".join(f"term {i},definition number {i} of the table\n"
                                                   for i in range(400)), encoding="utf-8")
    assert data.stop_compose("en")[data.report] == t("en", "data.no_compose")
    progress, reached, pressed, seen = _paused_progress(t("ko", "stage.mining"))
    thread, box = _in_thread(data.run_compose, str(table), "term", "definition", 3, "bm25", 0.0, "", "ko",
                             progress=progress)
    assert reached.wait(60)
    assert t("ko", "data.compose_stopping") in data.stop_compose("ko")[data.report]
    pressed.set()
    thread.join(60)
    assert t("ko", "data.compose_stopped") in box["out"][data.report]
    assert seen[0] == t("ko", "stage.reading")  # the engine's stage names, in the page's language
    assert not list((tmp_path / "ws" / "data").glob("pairs-*.jsonl"))  # nothing written
    assert data.stop_compose("en")[data.report] == t("en", "data.no_compose") and data.jobs == {}
    # not stopped: the report's details have translated labels
    out = data.run_compose(str(table), "term", "definition", 1, "bm25", 0.0, "", "ko", progress=lambda *a, **k: None)
    report = out[data.report]
    assert t("ko", "report.train_file") in report and t("ko", "report.negatives") in report
    assert "rows read" not in report and "400" in report


def test_crawl_started_from_the_app_can_be_stopped_and_goes_on_where_it_stopped(tmp_path, monkeypatch):
    from test_crawler import FIXTURES, _serve

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = _serve(FIXTURES)
    try:
        demo = _app(tmp_path)
        data = demo.ui.tabs["data"]
        urls = "\n".join(server.url(p) for p in ("/aliases.html", "/tables.html"))
        assert data.stop_crawl("en")[data.message] == t("en", "data.no_crawl")
        progress, reached, pressed, seen = _paused_progress(t("ko", "stage.done"))
        thread, box = _in_thread(data.run_crawl, [], urls, 0, "ko", progress=progress)
        assert reached.wait(60)  # the first page is done; the second is next
        assert t("ko", "data.crawl_stopping") in data.stop_crawl("ko")[data.message]
        pressed.set()
        thread.join(60)
        out = box["out"]
        assert "aliases.html" in seen[0] and seen[0].startswith(t("ko", "stage.started"))
        folder = next((tmp_path / "ws" / "data").glob("crawl-*"))
        stopped = t("ko", "data.crawl_stopped", pages=1, terms=5, path=folder / "glossary.csv")
        assert stopped in out[data.message]
        assert out[data.table_path] == str(folder / "glossary.csv") and len(out[data.preview]) == 5
        assert server.hits.count("/tables.html") == 0
        # the same crawl again goes on in the same folder: the first page is not fetched again
        out = data.run_crawl([], urls, 0, "en", progress=lambda *a, **k: None)
        assert "went on from a stopped crawl: 1 page(s)" in out[data.message]
        assert server.hits.count("/aliases.html") == 1 and server.hits.count("/tables.html") == 1
        assert len(out[data.preview]) > 5 and list((tmp_path / "ws" / "data").glob("crawl-*")) == [folder]
    finally:
        server.shutdown()
        server.server_close()


def test_train_tab_says_what_set_up_is_doing():
    from embedgui.ui.train_view import message_markdown

    assert t("ko", "phase.model") in message_markdown(RunSnapshot(status="starting", phase="model"), "ko")
    assert t("en", "phase.data") in message_markdown(RunSnapshot(status="starting", phase="data"), "en")
    assert t("en", "train.loading") in message_markdown(RunSnapshot(status="starting"), "en")
    running = RunSnapshot(status="running", phase="eval", device="cpu", precision="float32")
    assert t("ko", "phase.eval") in message_markdown(running, "ko")


def test_config_tab_warns_when_an_english_model_meets_korean_data(tmp_path):
    pairs = tmp_path / "ko.jsonl"
    pairs.write_text("".join(json.dumps({"anchor": f"용어 {i}", "positive": f"정의 {i}"}, ensure_ascii=False) + "\n"
                             for i in range(20)), encoding="utf-8")
    config = Config()
    config.model_id = "sentence-transformers/all-MiniLM-L6-v2"
    config.data.pairs_path = str(pairs)
    assert "다국어" in ct.validation_markdown("ko", [], config)
    assert ct.validation_markdown("en", [], config).startswith(t("en", "config.ok"))
    config.model_id = "intfloat/multilingual-e5-small"
    assert ct.validation_markdown("en", [], config) == t("en", "config.ok")


def test_the_form_shows_the_prompts_a_model_declares_where_it_leaves_them_to_the_model(tiny_bert, tmp_path):
    import shutil

    model = shutil.copytree(tiny_bert, tmp_path / "e5-like")
    (model / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"query": "query: ", "document": "passage: "}}))
    config = Config(model_id=str(model))
    text = ct.validation_markdown("en", [], config)
    assert "declares its own prompts" in text and "'query: '" in text and "'passage: '" in text
    config.data.query_prompt = "search_query: "  # set in the form: the model's own query prompt is not used
    text = ct.validation_markdown("ko", [], config)
    assert "'passage: '" in text and "'query: '" not in text and "프롬프트" in text
    assert "prompts" not in ct.validation_markdown("en", [], Config(model_id=str(tiny_bert)))


def test_after_compose_search_covers_the_held_out_texts_and_a_reload_shows_the_eval_file(tmp_path):
    demo = _app(tmp_path)
    data, ev, se = demo.ui.tabs["data"], demo.ui.tabs["eval"], demo.ui.tabs["search"]
    table = tmp_path / "terms.csv"
    table.write_text("term,definition\n" + "".join(f"term {i},definition number {i} of the table\n"
                                                   for i in range(40)), encoding="utf-8")
    out = data.run_compose(str(table), "term", "definition", 1, "bm25", 0.25, "", "en", progress=lambda *a, **k: None)
    corpus = Path(out[se.corpus]).read_text(encoding="utf-8")
    eval_file = out[ev.pairs]
    assert eval_file.endswith(".eval.jsonl")
    held_out = [json.loads(line)["positive"] for line in Path(eval_file).read_text(encoding="utf-8").splitlines()]
    assert held_out and all(text in corpus for text in held_out)  # a held-out term can be found in Search
    # A reload with no trained run: the Evaluate tab shows the saved config's eval file, not the app-start value.
    assert ev.refresh_models("assets/sample_pairs.jsonl", from_config=True)[ev.pairs] == eval_file

    # The user then points the form at another pairs file: the eval file, the composed data's held-out split,
    # follows it (else a run on the new data is scored on the old data's held-out rows): the other file's split
    # where it has one, none for the sample. A path still being typed changes nothing; an eval file named otherwise
    # stays where it is; and a move that would make the config invalid (keep_best needs eval data) is not made.
    from embedgui.engine.compose import held_out_path

    cfg = demo.ui.tabs["config"]
    paths = [spec.path for spec in cfg.specs]
    pairs_at, eval_at = paths.index("data.pairs_path"), paths.index("data.eval_path")
    first = ct.workspace_config(demo.ui.ctx).data.pairs_path
    assert ct.workspace_config(demo.ui.ctx).data.eval_path == eval_file == str(held_out_path(first))
    other = tmp_path / "other.jsonl"
    other.write_text(Path(first).read_text(encoding="utf-8"), encoding="utf-8")
    other_eval = tmp_path / "other.eval.jsonl"
    other_eval.write_text(Path(eval_file).read_text(encoding="utf-8"), encoding="utf-8")
    values = list(ct.config_to_values(ct.workspace_config(demo.ui.ctx)))
    for typed in (str(tmp_path / "oth"), str(tmp_path / "other.json")):  # keystrokes on the way to other.jsonl
        values[pairs_at] = typed
        assert cfg.field("data.eval_path") not in cfg.edited("en", "", *values)
    assert ct.workspace_config(demo.ui.ctx).data.eval_path == eval_file
    for pairs, expected in ((other, str(other_eval)), ("assets/sample_pairs.jsonl", "")):  # relative, as typed
        values[pairs_at] = str(pairs)
        out = cfg.edited("en", "", *values)
        assert out[cfg.field("data.eval_path")] == expected
        assert ct.workspace_config(demo.ui.ctx).data.eval_path == (expected or None)
        values[eval_at] = expected
    values[pairs_at], values[eval_at] = str(other), str(other_eval)
    values[paths.index("output.keep_best")] = True
    values[paths.index("data.eval_split")] = 0.0
    values[pairs_at] = str(Path("assets/sample_pairs.jsonl").resolve())
    out = cfg.edited("en", "", *values)
    assert cfg.field("data.eval_path") not in out
    assert ct.workspace_config(demo.ui.ctx).data.eval_path == str(other_eval)
    values[paths.index("output.keep_best")] = False
    chosen = tmp_path / "my_eval.jsonl"
    chosen.write_text(Path(eval_file).read_text(encoding="utf-8"), encoding="utf-8")
    values[eval_at] = str(chosen)
    cfg.edited("en", "", *values)
    values[pairs_at] = first
    out = cfg.edited("en", "", *values)
    assert cfg.field("data.eval_path") not in out and ct.workspace_config(demo.ui.ctx).data.eval_path == str(chosen)


def test_the_engines_common_sentences_read_in_korean_with_names_and_values_kept():
    from embedgui.engine.config import ConfigError
    from embedgui.engine.runner import OWNER_MESSAGE
    from embedgui.ui.engine_text import engine_text

    errors: list[str] = []
    try:
        config_from_dict({"train": {"batch_size": 0.5, "epoch": 2}, "optim": {"lr": None}})
    except ConfigError as e:
        errors = e.errors
    korean = [engine_text(e, "ko") for e in errors]
    assert any(k.startswith("train.batch_size: 0.5 값은 쓸 수 없습니다. 정수를 입력하세요") for k in korean), korean
    assert any("train.epoch: 알 수 없는 키입니다. 'epochs'" in k for k in korean), korean
    assert any(k.startswith("optim.lr: 비워 둘 수 없습니다") for k in korean), korean
    assert "다른 방문자가 시작한 학습" in engine_text(OWNER_MESSAGE, "ko")
    assert engine_text(OWNER_MESSAGE, "en") == OWNER_MESSAGE
    assert engine_text("Something new the table does not know.", "ko") == "Something new the table does not know."
    assert "정수를 입력하세요" in ct.validation_markdown("ko", errors)


def test_the_crawlers_reasons_read_in_korean():
    """The reasons the Data tab's crawl error table shows, taken from the crawler itself, not copied here."""
    from embedgui.engine.crawler.loop import NO_GLOSSARY
    from embedgui.engine.crawler.net import UnsafeAddressError, check_url
    from embedgui.ui.engine_text import engine_text

    reasons = [NO_GLOSSARY]
    for url in ("example.org/glossary", "https://127.0.0.1/glossary"):
        with pytest.raises(UnsafeAddressError) as info:
            check_url(url, hosted=True)
        reasons.append(str(info.value))
    for reason in reasons:
        korean = engine_text(reason, "ko")
        assert korean != reason and not re.search(r"[a-z]{4,} [a-z]{4,}", korean.replace("robots.txt", "")), korean


def test_the_table_readers_refusals_read_in_korean(tmp_path):
    """What the Data tab says about an unusable upload, made by the real reader from real bad files."""
    from embedgui.engine.tables import TableError, read_table
    from embedgui.ui.engine_text import engine_text

    files = {"empty.csv": b"", "book.xlsx": b"PK\x03\x04" + bytes(range(256)) * 4, "nul.csv": b"term,def\x00\n",
             "broken.jsonl": b'{"anchor": "a", "positive": "b"}\n{"anchor": oops}\n', "array.jsonl": b'[{"a": 1}]',
             "ragged.csv": "용어,정의\n가,나\n다,라,마,바\n".encode(), "one.csv": "용어\n가\n나\n".encode(),
             "empty.jsonl": b"", "header.csv": "용어,정의\n".encode()}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(TableError) as info:
            read_table(tmp_path / name)
        korean = engine_text(str(info.value), "ko")
        # a command, an example row or a parser's own detail in brackets is not the app's prose
        shown = re.sub(r"jq -c .*|\{.*\}|\(.*?\)", "", korean)
        assert korean != str(info.value) and not re.search(r"[a-z]{4,} [a-z]{4,}", shown), (name, korean)


def test_why_a_run_did_not_start_or_stopped_reads_in_korean(tmp_path, monkeypatch):
    """The Train tab's message for the errors a user causes when training, made by the real engine code (a bad
    pairs file, a model folder that cannot load, an unavailable device, an unwritable or empty output folder, NaN,
    out of memory), shown in Korean with the file, line, field and values kept."""
    import torch

    from embedgui.engine.config import config_from_dict
    from embedgui.engine.data import Pair, PairsError, find_pairs_path, read_pairs, split_pairs
    from embedgui.engine.device import DeviceError, resolve_device
    from embedgui.engine.modeling import ModelLoadError, load_embedder
    from embedgui.engine.train_job import TrainingError, not_finite_message, oom_message
    from embedgui.engine.trainer import Trainer
    from embedgui.ui.engine_text import engine_text

    messages: list[str] = []

    def caught(kind, call, *args, **kwargs):
        with pytest.raises(kind) as info:
            call(*args, **kwargs)
        messages.append(str(info.value))

    bad_lines = {"json": '{"anchor": "a", "positive": oops}', "array": '["a", "b"]', "missing": '{"anchor": "a"}',
                 "empty": '{"anchor": " ", "positive": "b"}', "number": '{"anchor": "a", "positive": 3}',
                 "negatives": '{"anchor": "a", "positive": "b", "hard_negatives": "c"}'}
    for name, line in bad_lines.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text('{"anchor": "ok", "positive": "fine"}\n' + line + "\n", encoding="utf-8")
        caught(PairsError, read_pairs, path)
    (tmp_path / "latin1.jsonl").write_bytes('{"anchor": "caf\u00e9", "positive": "b"}\n'.encode("latin-1"))
    caught(PairsError, read_pairs, tmp_path / "latin1.jsonl")
    (tmp_path / "blank.jsonl").write_text("\n\n", encoding="utf-8")
    caught(PairsError, read_pairs, tmp_path / "blank.jsonl")
    caught(PairsError, find_pairs_path, str(tmp_path), None)
    monkeypatch.chdir(tmp_path)
    caught(PairsError, find_pairs_path, None, None)
    caught(PairsError, split_pairs, [Pair("same", "one", []), Pair("same", "two", [])], 0.2, 42)

    (tmp_path / "weights.bin").write_bytes(b"0")
    (tmp_path / "no_type").mkdir()
    (tmp_path / "no_type" / "config.json").write_text("{}", encoding="utf-8")
    (tmp_path / "custom").mkdir()
    (tmp_path / "custom" / "config.json").write_text(json.dumps(
        {"model_type": "foo", "auto_map": {"AutoConfig": "configuration_foo.FooConfig"}}), encoding="utf-8")
    for model in ("missing-folder", "weights.bin", "no_type", "custom"):
        caught(ModelLoadError, load_embedder, str(tmp_path / model), device="cpu")
    if not torch.cuda.is_available():
        caught(DeviceError, resolve_device, "cuda")
    if not torch.backends.mps.is_available():
        caught(DeviceError, resolve_device, "mps")

    (tmp_path / "a_file").write_text("x", encoding="utf-8")
    (tmp_path / "same.jsonl").write_text('{"anchor": "a", "positive": "b"}\n' * 4, encoding="utf-8")
    (tmp_path / "good.jsonl").write_text("".join(json.dumps({"anchor": f"term {i}", "positive": f"gloss {i}"}) + "\n"
                                                 for i in range(4)), encoding="utf-8")
    for pairs, output, resume, batch in (("same", "runs", False, 2), ("good", "runs", False, 1),
                                         ("good", "a_file/runs", False, 2), ("good", "runs", True, 2)):
        config = config_from_dict({"model_id": str(tmp_path / "missing-folder"), "device": "cpu",
                                   "data": {"pairs_path": str(tmp_path / f"{pairs}.jsonl")},
                                   "train": {"resume": resume, "batch_size": batch},
                                   "output": {"save_dir": str(tmp_path / output)}})
        caught(TrainingError, Trainer(config).fit)
    messages += [not_finite_message("loss", "nan", 3, tmp_path / "runs" / "snapshot"),
                 not_finite_message("gradient norm", "inf", 1, None),
                 not_finite_message("loss of another process", "not finite", 2, None),  # the value the trainer uses
                 oom_message(torch.device("cpu"), 4, "train"), oom_message(torch.device("cpu"), 4, "eval")]

    for english in messages:
        korean = engine_text(english, "ko")
        # a parser's or library's own detail in brackets, an example row or a command is not the app's prose
        shown = re.sub(r"\(.*?\)|\{.*\}|`.*?`|Unrecognized model.*", "", korean)
        assert korean != english and re.search("[가-힣]", korean), english
        assert not re.search(r"[a-z]{4,} [a-z]{4,}", shown), (english, korean)
        for kept in re.findall(r"(?:data|train|optim|output|hf)\.\w+|model_id|\b\d+\b|/[\w./-]*\w", english):
            assert kept in korean, (kept, english, korean)


def test_every_problem_the_config_check_finds_reads_in_korean():
    """Each rule of the config check, broken once, read in Korean: the Config tab lists these, and Start repeats
    them (it used to show the English sentences after a Korean first line)."""
    from embedgui.engine.config import ConfigError
    from embedgui.ui.engine_text import engine_text

    broken = [
        {"device": "gpu", "dtype": "fp64", "pooling": "max", "model_id": " "},
        {"optim": {"name": "sgdd", "scheduler": "cos", "lr": 2, "weight_decay": -1, "warmup_ratio": 1,
                   "max_grad_norm": 0}},
        {"train": {"batch_size": 0, "max_minutes": 0, "temperature": 20, "dropout": 1, "attention_dropout": -0.1,
                   "lora": {"r": 0, "alpha": -1, "dropout": 2, "target_modules": []}, "matryoshka_dims": "big"}},
        {"train": {"lora": "yes", "matryoshka_dims": [64, 64]}},
        {"train": {"learn_temperature": True, "temperature": 5, "gradcache_chunk": 8}},
        {"train": {"epochs": None, "max_length": "long", "symmetric": "yes", "similar_batches": 1}},
        {"data": {"eval_split": 2, "query_prompt": 3}},
        {"data": {"eval_split": 0.1, "stream": True}},
        {"output": {"save_name": "..", "save_dir": "", "best_metric": "recall@3", "keep_best": True}},
    ]
    errors = []
    for data in broken:
        with pytest.raises(ConfigError) as info:
            config_from_dict(data)
        errors += info.value.errors
    assert len(errors) >= 35, errors
    for english in errors:
        korean = engine_text(english, "ko")
        shown = re.sub(r"다음 중 하나를 고르세요: .*", "", korean)  # the choices are values, not the app's prose
        assert korean != english and re.search("[가-힣]", korean), english
        assert not re.search(r"[a-z]{4,} [a-z]{4,}", shown), (english, korean)
        assert english.split(":")[0] in korean  # the field is named as the form names it


def test_the_precision_reasons_the_column_choice_and_a_corpus_without_a_column_read_in_korean(tmp_path):
    """The progress line's precision reason (the CPU probe's verdict, a resumed run's kept precision), how an
    uploaded table's columns were chosen, and a Search corpus whose column was not picked, all from the engine."""
    import torch

    from embedgui.engine.device import precision_for_resume, resolve_precision
    from embedgui.engine.search import CorpusError, load_corpus
    from embedgui.engine.tables import detect_columns, read_table
    from embedgui.ui.engine_text import column_choice_text, engine_text

    cpu = torch.device("cpu")
    reasons = [resolve_precision("auto", cpu).reason, resolve_precision("auto", cpu).reason,  # probed, then cached
               precision_for_resume("auto", cpu, "bfloat16", "cpu").reason]
    (tmp_path / "corpus.csv").write_text("term,definition\nbatch,a group of rows\n", encoding="utf-8")
    with pytest.raises(CorpusError) as info:
        load_corpus(tmp_path / "corpus.csv")
    for english in [*reasons, str(info.value)]:
        korean = engine_text(english, "ko")
        assert korean != english and re.search("[가-힣]", korean), english
        assert not re.search(r"[a-z]{4,} [a-z]{4,}", korean), (english, korean)
    (tmp_path / "headed.csv").write_text("term,definition\nbatch,a group of rows\n", encoding="utf-8")
    (tmp_path / "bare.csv").write_text("batch,a group of rows\nepoch,one pass over the data\n", encoding="utf-8")
    for name in ("headed.csv", "bare.csv"):
        how = detect_columns(read_table(tmp_path / name)).how
        korean = column_choice_text(how, "ko")
        assert korean != how and not re.search(r"[a-z]{4,}", korean), (how, korean)
        assert column_choice_text(how, "en") == how


def test_a_refused_upload_is_not_kept_in_the_workspace(tmp_path):
    """An upload the reader refuses says why and leaves nothing behind; an accepted one is kept for compose."""
    demo = _app(tmp_path)
    data = demo.ui.tabs["data"]
    data_dir = demo.ui.ctx.data_dir
    (tmp_path / "header.csv").write_text("term,definition\n", encoding="utf-8")
    out = data.accept_upload(str(tmp_path / "header.csv"), "ko")
    assert out[data.table_path] is None and "머리글 아래에 행이 없습니다" in out[data.message]
    assert not list(data_dir.glob("upload-*"))
    (tmp_path / "good.csv").write_text("term,definition\nbatch,a group of rows\nepoch,one pass\n", encoding="utf-8")
    out = data.accept_upload(str(tmp_path / "good.csv"), "en")
    assert out[data.table_path] and [p.name for p in data_dir.glob("upload-*")] == [Path(out[data.table_path]).name]


def test_the_form_says_when_its_pairs_or_eval_file_is_not_there(tmp_path):
    """A pairs or eval file that is not there is said at once under the form (Start would stop on it), as a note:
    the form stays valid, so it still autosaves while a path is being typed."""
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"anchor": "a", "positive": "b"}\n', encoding="utf-8")
    config = Config()
    config.base_dir = str(tmp_path)
    config.data.pairs_path = str(pairs)
    assert ct.validation_markdown("en", [], config) == t("en", "config.ok")
    config.data.eval_path = "held_out.jsonl"
    text = ct.validation_markdown("ko", [], config)
    assert text.startswith(t("ko", "config.missing_files")) and t("ko", "config.ok") not in text  # no "valid" then
    assert "data.eval_path: held_out.jsonl을(를) 찾지 못했습니다" in text
    config.data.eval_path, config.data.pairs_path = None, str(tmp_path / "typo.jsonl")
    text = ct.validation_markdown("en", [], config)
    assert t("en", "config.missing_files") in text and "typo.jsonl not found" in text


def test_a_first_page_load_writes_the_config_the_tabs_command_names(tmp_path):
    """The Config tab shows `python -m embedgui train --config <workspace>/config.json`: after the first page load
    that file exists and holds what the form shows, so the command runs before any edit."""
    demo = _app(tmp_path)
    cfg, ctx = demo.ui.tabs["config"], demo.ui.ctx
    assert not ctx.config_path.exists()
    out = cfg.on_load("en", "")
    assert ctx.config_path.exists()
    saved = ct.config_to_values(ct.load_config(ctx.config_path))
    assert [out[f] for f in cfg.fields] == saved


def test_the_running_row_of_the_run_list_shows_its_rows_and_planned_steps(tiny_bert, tmp_path):
    """A run's folder has no summary until it ends: while it trains, its row takes the rows it read and the steps
    it plans from the run itself (they were empty and 0)."""
    from test_runner import LONG, wait_for
    from test_trainer import make_config

    from embedgui.engine.runner import Run

    run = Run()
    demo = _app(tmp_path, run=run)
    ctx = demo.ui.ctx
    config = make_config(tiny_bert, tmp_path, dtype="auto", train={"steps_per_epoch": LONG},
                         output={"save_dir": str(ctx.runs_dir), "save_name": "live"})
    run.start(config)
    try:
        wait_for(run, lambda s: len(s.logs) >= 1)
        row = demo.ui.tabs["train"].runs_frame("en", "").iloc[0].tolist()
        assert row[0] == "live" and row[1] == "running" and row[2].endswith(f"/{LONG}") and row[4] == 40, row
        # the precision dtype auto chose, as the finished row will say (it said "auto" while training)
        assert row[5].endswith(run.snapshot().precision) and run.snapshot().precision != "auto", row
    finally:
        run.stop()
        assert run.wait(60)


def test_a_start_that_fails_at_once_does_not_name_the_folder_it_removed(tiny_bert, tmp_path):
    """A run that fails before its first step leaves no folder (the runner removes it): the message says so in
    both languages instead of pointing at a folder that is gone; a run that trained keeps naming its folder."""
    from test_trainer import make_config

    from embedgui.engine.runner import Run
    from embedgui.ui.train_view import message_markdown

    pairs = tmp_path / "bad.jsonl"
    pairs.write_text('{"anchor": "a", "positive": "b"}\n{"anchor": "broken\n', encoding="utf-8")
    run = Run()
    config = make_config(tiny_bert, tmp_path, data={"pairs_path": str(pairs)})
    run.start(config)
    assert run.wait(60)
    snap = run.snapshot()
    assert snap.status == "failed" and not config.run_dir.exists()
    en, ko = message_markdown(snap, "en"), message_markdown(snap, "ko")
    assert "bad.jsonl" in en and "folder was removed" in en and f"`{snap.run_dir}`" not in en
    assert t("ko", "train.nothing_kept") in ko

    config.run_dir.mkdir(parents=True)  # where the folder is there (a run that trained, a resume), it is named
    assert f"`{snap.run_dir}`" in message_markdown(snap, "en")


def test_the_started_in_notice_goes_when_the_start_failed_and_its_folder_was_removed(tiny_bert, tmp_path):
    from test_trainer import make_config

    from embedgui.engine.runner import Run

    run = Run()
    demo = _app(tmp_path, run=run)
    train = demo.ui.tabs["train"]
    good = make_config(tiny_bert, tmp_path / "good", train={"steps_per_epoch": 1})
    run.start(good)
    assert run.wait(60) and run.snapshot().status == "finished"
    assert train.notice not in train.tick("en", None, False, "", None, "")  # a finished run keeps the notice

    pairs = tmp_path / "bad.jsonl"
    pairs.write_text('{"anchor": "broken\n', encoding="utf-8")
    bad = make_config(tiny_bert, tmp_path / "bad", data={"pairs_path": str(pairs)})
    run.start(bad)
    assert run.wait(60) and run.snapshot().status == "failed" and not bad.run_dir.exists()
    out = train.tick("en", None, False, "", None, "")
    assert out[train.notice] == "" and out[train.notice_config] is None
