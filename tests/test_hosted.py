"""Hosted mode as an attacker tries it: files outside the workspace, existence probes, and the served files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT

from embedgui.engine.config import Config
from embedgui.ui import config_tab as ct
from embedgui.ui.context import AppContext


@pytest.fixture()
def secret(tmp_path) -> Path:
    folder = tmp_path / "secret"
    folder.mkdir()
    path = folder / "secret.jsonl"
    path.write_text('{"anchor": "password", "positive": "hunter2"}\n' * 4)
    return path


def test_relative_path_escaping_the_workspace_is_refused(tmp_path, secret, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the reported hole: "data" exists in the workspace, not in the cwd
    ctx = AppContext.create(tmp_path / "app" / "ws", hosted=True)
    config = Config()
    config.output.save_dir = str(ctx.runs_dir)
    config.data.pairs_path = "data/../../../secret/secret.jsonl"
    config.data.eval_split = 0.5
    problems = ct.hosted_problems(config, ctx)
    assert any(p.startswith("data.pairs_path:") and "outside the app's folders" in p for p in problems), problems


def test_a_link_inside_the_workspace_is_refused(tmp_path, secret):
    ctx = AppContext.create(tmp_path / "ws", hosted=True)
    os.symlink(secret, ctx.data_dir / "innocent.jsonl")
    assert ctx.refuse_path(str(ctx.data_dir / "innocent.jsonl"), "data.pairs_path")
    assert ctx.refuse_path("data/innocent.jsonl", "corpus")


def test_refusals_do_not_reveal_what_exists(tmp_path, secret):
    ctx = AppContext.create(tmp_path / "ws", hosted=True)
    there = ctx.refuse_path(str(secret), "corpus")
    missing = ctx.refuse_path(str(secret.with_name("nothing.jsonl")), "corpus")
    assert there and missing and there.replace("secret.jsonl", "X") == missing.replace("nothing.jsonl", "X")


def test_search_and_evaluate_open_what_the_check_judged_not_the_servers_working_directory(tmp_path, monkeypatch):
    """The hole left after the first fix: the tabs checked `notes.jsonl` beside the workspace, then the loaders
    opened `./notes.jsonl` in the server's working directory. The tabs now hand the loaders the resolved path."""
    from embedgui.engine.data import read_pairs
    from embedgui.engine.paths import PathRefused
    from embedgui.engine.search import load_corpus

    server = tmp_path / "server"
    (server / "org" / "model").mkdir(parents=True)  # a Hub-shaped folder the model loader would open
    (server / "notes.jsonl").write_text('{"anchor": "password", "positive": "hunter2"}\n')
    monkeypatch.chdir(server)
    ctx = AppContext.create(tmp_path / "ws", hosted=True)
    for name in ("corpus", "pairs"):
        resolved = Path(ctx.resolve("notes.jsonl", name))
        assert resolved == ctx.workspace / "notes.jsonl" and not ctx.refuse_path("notes.jsonl", name)
        with pytest.raises((OSError, ValueError)) as e:  # the loader opens the workspace's (missing) file
            load_corpus(resolved) if name == "corpus" else read_pairs(resolved)
        assert "hunter2" not in str(e.value)
    with pytest.raises(PathRefused):
        ctx.resolve("org/model", "model")
    assert ctx.refuse_path("org/model", "base")
    assert ctx.resolve("someone/else-model", "model") == "someone/else-model"  # a real Hub id stays one
    from embedgui.engine.modeling import resolve_model_path

    with pytest.raises(PathRefused):  # the trainer's model loader refuses it too
        resolve_model_path("org/model", str(ctx.workspace), roots=ctx.allowed_roots)
    hub = resolve_model_path("someone/else-model", str(ctx.workspace), roots=ctx.allowed_roots)
    assert hub == "someone/else-model"
    (ctx.workspace / "mine.jsonl").write_text('{"anchor": "a", "positive": "b"}\n')
    assert ctx.resolve("mine.jsonl", "corpus") == str(ctx.workspace / "mine.jsonl")
    # A local app resolves the same way (beside the workspace first), then falls back to the working directory.
    local = AppContext.create(tmp_path / "ws2", hosted=False)
    assert local.resolve("notes.jsonl", "corpus") == str(server / "notes.jsonl")
    assert local.resolve("org/model", "model") == str(server / "org" / "model")


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except urllib.error.URLError:
        return 0  # not listening yet


@pytest.mark.slow
@pytest.mark.parametrize("hosted", [True, False])
def test_hosted_app_serves_nothing_from_its_workspace(tmp_path, hosted):
    import socket

    workspace = tmp_path / "ws"
    (workspace / "runs" / "someone").mkdir(parents=True)
    secret = workspace / "runs" / "someone" / "eval_pairs.jsonl"
    secret.write_text('{"anchor": "a", "positive": "b"}\n')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    args = [sys.executable, "launch.py", "--port", str(port), "--workspace", str(workspace)]
    proc = subprocess.Popen(args + (["--hosted"] if hosted else []), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while _get(f"http://127.0.0.1:{port}/") != 200:
            assert proc.poll() is None and time.time() < deadline, "the app did not start"
            time.sleep(0.5)
        status = _get(f"http://127.0.0.1:{port}/gradio_api/file={secret}")
        assert status == (403 if hosted else 200)
    finally:
        proc.terminate()
        proc.wait(30)


def test_the_trainer_itself_refuses_files_outside_the_roots(tmp_path, secret, tiny_bert):
    """Defence in depth: even a config that skipped the form's check cannot make a run read outside."""
    from embedgui.engine.runner import Run

    ws = tmp_path / "ws"
    (ws / "data").mkdir(parents=True)
    config = Config(model_id=str(tiny_bert), device="cpu", dtype="float32")
    config.data.pairs_path = "data/../../secret/secret.jsonl"
    config.data.eval_split = 0.5
    config.output.save_dir, config.output.save_name = str(ws / "runs"), "r1"
    config.base_dir, config.allowed_roots = str(ws), [str(ws), str(tiny_bert)]
    run = Run()
    run.start(config)
    assert run.wait(120)
    snap = run.snapshot()
    assert snap.status == "failed" and "data.pairs_path" in snap.message
    assert "outside the app's folders" in snap.message
    assert not list((ws / "runs").rglob("eval_pairs.jsonl"))


def test_a_hosted_run_in_its_own_process_keeps_to_the_visitors_folders(tmp_path, tiny_bert):
    """The app trains in a process of its own, whose config lost the hosted roots: its loaders did not confine
    again, and the bundled sample's mined negatives were cached beside the sample (shared by every visitor)."""
    from embedgui.engine.runner import Run

    shared = tmp_path / "assets"
    shared.mkdir()
    pairs = shared / "sample.jsonl"
    pairs.write_text("".join(f'{{"anchor": "term {i}", "positive": "definition of word {i}"}}\n' for i in range(16)))
    visitor = tmp_path / "ws" / "visitors" / "alice"
    (visitor / "data").mkdir(parents=True)
    config = Config(model_id=str(tiny_bert), device="cpu", dtype="float32")
    config.data.pairs_path = str(pairs)
    config.train.batch_size, config.train.steps_per_epoch = 4, 2
    config.output.save_dir, config.output.save_name = str(visitor / "runs"), "r"
    config.base_dir, config.allowed_roots = str(visitor), [str(visitor), str(shared), str(tiny_bert)]
    run = Run(single_user=False)
    run.start(config, owner="alice")
    assert run.wait(180)
    snap = run.snapshot()
    assert snap.status == "finished", snap.message
    assert not list(shared.glob("*.mined-*")) and list((visitor / "data").glob("sample.mined-*.jsonl"))


def test_hosted_app_caps_the_size_of_a_job(tmp_path):
    ctx = AppContext.create(tmp_path / "ws", hosted=True)
    config = Config()
    config.output.save_dir = str(ctx.runs_dir)
    assert ct.hosted_problems(config, ctx) == []
    config.train.batch_size, config.train.max_length = 10**12, 100000
    problems = ct.hosted_problems(config, ctx)
    assert any(p.startswith("train.batch_size: 1000000000000 is more than this shared app allows") for p in problems)
    assert any(p.startswith("train.max_length:") for p in problems)
    config.train.batch_size, config.train.max_length, config.train.num_workers = 32, 128, 64  # 64 processes
    assert [p.split(":")[0] for p in ct.hosted_problems(config, ctx)] == ["train.num_workers"]
    assert ctx.run.max_minutes and not AppContext.create(tmp_path / "ws2", hosted=False).run.max_minutes


@pytest.mark.parametrize("name", [".", "..", "a/b", "a\\b", " "])
def test_save_name_that_is_not_a_plain_folder_is_refused_everywhere(name):
    config = Config()
    config.output.save_name = name
    assert any(e.startswith("output.save_name:") for e in config.validate())


def _limited_config(tmp_path, tiny_bert, steps_per_epoch: int) -> Config:
    """A tiny run of 16 rows, batch 4, a log row every step, saved as runs/limited (the time-limit tests)."""
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(f'{{"anchor": "term {i}", "positive": "definition of word {i}"}}\n' for i in range(16)))
    config = Config(model_id=str(tiny_bert), device="cpu", dtype="float32")
    config.data.pairs_path = str(pairs)
    config.train.batch_size, config.train.steps_per_epoch, config.train.log_every = 4, steps_per_epoch, 1
    config.output.save_dir, config.output.save_name = str(tmp_path / "runs"), "limited"
    return config


def test_a_run_over_its_time_limit_stops_saved(tmp_path, tiny_bert, monkeypatch):
    """The hosted cap on minutes is a callback asking the loop to stop: the run ends as a Stop does."""
    from embedgui.engine import callbacks
    from embedgui.engine.runner import Run

    clock = iter(range(0, 10**6, 30))  # every reading of the clock is 30 s after the last
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: next(clock))
    config = _limited_config(tmp_path, tiny_bert, steps_per_epoch=50)
    # a fake clock in this process; three readings: begin, step 1 (30 s), step 2 (60 s), step 3 (90 s) -> stop
    run = Run(max_minutes=1.5, in_process=True)
    run.start(config)
    assert run.wait(120)
    snap = run.snapshot()
    assert snap.status == "stopped" and snap.step == 3, (snap.status, snap.step, snap.message)
    assert "limit of this app was reached" in snap.message
    assert (tmp_path / "runs" / "limited" / "modules.json").exists()
    # Resuming does not restart the clock: the run has used its minutes, so it stops after one more step.
    run.start(config, resume=True)
    assert run.wait(120)
    snap = run.snapshot()
    assert snap.status == "stopped" and snap.step == 4, (snap.status, snap.step, snap.message)


def test_a_visitors_folder_has_a_quota_checked_where_they_add_to_it(tmp_path, monkeypatch):
    """Uploads, crawls, composed files and runs had no bound but the file size: one visitor could fill the shared
    disk. Each visitor's folder now has a quota (EMBEDGUI_HOSTED_QUOTA_MB), checked where they add to it; another
    visitor is not held back by it, and deleting files frees it."""
    from embedgui.ui.app import create_app

    monkeypatch.setenv("EMBEDGUI_HOSTED_QUOTA_MB", "1")
    demo = create_app(AppContext.create(tmp_path / "ws", hosted=True))
    tabs, root = demo.ui.tabs, demo.ui.ctx
    data, search, train = tabs["data"], tabs["search"], tabs["train"]
    table = tmp_path / "big.csv"
    table.write_text("term,definition\n" + "".join(f"term {i},{'a long definition ' * 20}{i}\n"
                                                    for i in range(1500)))  # ~0.6 MB
    first = data.accept_upload(str(table), "en", "alice")
    assert first[data.table_path]
    again = data.accept_upload(str(table), "ko", "alice")  # 1.2 MB would be over
    assert again[data.table_path] is None and "1 MB" in again[data.message] and "한도" in again[data.message]
    assert len(list(root.visitor("alice").data_dir.glob("upload-*"))) == 1
    refused = search.upload_corpus(str(table), "alice", "en")
    assert search.corpus not in refused and "more than its 1 MB" in refused[search.message]
    assert data.accept_upload(str(table), "en", "bob")[data.table_path]  # Bob's folder is his own
    for name in ("x.bin", "y.bin"):
        (root.visitor("alice").data_dir / name).write_bytes(b"0" * 300_000)  # now over: a Start is refused too
    values = ct.config_to_values(ct.workspace_config(root.visitor("alice")))
    started = train.start("en", "alice", *values)
    assert "more than its 1 MB" in started[train.notice] and not root.run.active
    composed = data.run_compose(first[data.table_path], None, None, 0, "bm25", 0, "", "en", "alice",
                                progress=lambda *a, **k: None)
    assert "more than its 1 MB" in composed[data.report]
    for name in ("x.bin", "y.bin"):
        (root.visitor("alice").data_dir / name).unlink()
    assert root.visitor("alice").over_quota() is None
    assert AppContext.create(tmp_path / "local", hosted=False).visitor("alice").over_quota(10**12) is None


def test_the_time_limit_counts_the_set_up_before_the_first_step(monkeypatch):
    """Downloading a model and mining negatives hold the app's one run as training does: a visitor whose set-up
    took 50 of their 60 seconds gets 10 more, not 60."""
    from embedgui.engine import callbacks

    now = [1000.0]
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: now[0])
    limit = callbacks.TimeLimit(1.0)  # made with the trainer
    limit.control = callbacks.TrainerControl()
    state = callbacks.TrainState()
    now[0] += 50  # loading and mining
    limit.on_train_begin(state)
    now[0] += 9
    limit.on_step_end(state)
    assert not limit.control.should_stop and limit.used == 59
    now[0] += 2
    limit.on_step_end(state)
    assert limit.control.should_stop and "1-minute limit" in limit.control.reason


def test_a_hosted_run_stays_its_owners_after_a_restart_and_only_they_delete_or_publish_it(tmp_path):
    from embedgui.engine import runner
    from embedgui.engine.runs import new_run_name
    from embedgui.ui.app import create_app

    demo = create_app(AppContext.create(tmp_path / "ws", hosted=True))
    train, alice = demo.ui.tabs["train"], demo.ui.ctx.visitor("alice")
    config = Config()
    config.output.save_dir = str(alice.runs_dir)
    config.output.save_name = new_run_name(config, alice.runs_dir)
    runner._write_hosted_record(config.run_dir, owner=runner._owner_hash("alice"), seconds=0.0)
    config.save(config.run_dir / "train_config.json")
    restarted = AppContext.create(tmp_path / "ws", hosted=True)  # a new process: nothing in memory
    assert restarted.run.can_control("alice", config.run_dir) and not restarted.run.can_control("bob", config.run_dir)
    name = config.output.save_name
    # Bob's page has its own runs folder: Alice's run is not in his list, and naming it reaches nothing
    assert name not in train.list_updates("en", owner="bob")[train.pick]["choices"]
    assert name in train.list_updates("en", owner="alice")[train.pick]["choices"]
    refused = train.delete("en", "bob", name, "")
    assert "not a run folder" in refused[train.runs_message] and config.run_dir.exists()
    pushed = train.push("en", "bob", name, "bob/stolen", True, "hf_token")
    assert "not a run folder" in pushed[train.runs_message] and pushed[train.token] == ""
    train.delete("en", "alice", name, "")
    assert not config.run_dir.exists()


def test_a_hosted_app_saves_the_config_but_serves_no_config_file(tmp_path):
    from embedgui.ui.app import create_app

    for hosted in (True, False):
        demo = create_app(AppContext.create(tmp_path / f"ws-{hosted}", hosted=hosted))
        cfg, ctx = demo.ui.tabs["config"], demo.ui.ctx.visitor("alice")
        values = ct.config_to_values(ct.workspace_config(ctx))
        out = cfg.save("en", "alice", *values)
        assert ctx.config_path.exists()  # saved either way
        if hosted:
            assert out[cfg.download] is None and "hands out no config files" in out[cfg.validation]
            assert not cfg.command.visible and str(tmp_path) not in cfg.command.value  # the server's own path
            assert "HF_TOKEN" not in demo.ui.tabs["train"].token.label  # the token box asks for the visitor's own
        else:
            assert out[cfg.download] == str(ctx.config_path)


def test_each_visitor_of_a_hosted_app_has_a_workspace_no_other_visitor_can_read(tmp_path):
    """Alice's upload, saved config and data: Bob's page does not show them, and naming them is refused."""
    from embedgui.ui.app import create_app

    demo = create_app(AppContext.create(tmp_path / "ws", hosted=True))
    tabs, root = demo.ui.tabs, demo.ui.ctx
    data, cfg, search = tabs["data"], tabs["config"], tabs["search"]
    upload = tmp_path / "alice-secret.csv"
    upload.write_text("term,definition\nalpha,Alice's private note one\nbeta,Alice's private note two\n")
    shown = data.accept_upload(str(upload), "en", "alice")
    alice_copy = Path(shown[data.table_path])
    alice = root.visitor("alice")
    assert alice_copy.parent == alice.data_dir and alice.workspace.parent.name == "visitors"
    values = ct.config_to_values(ct.workspace_config(alice))
    paths = [spec.path for spec in ct.field_specs()]
    values[paths.index("data.pairs_path")] = str(alice_copy)
    cfg.save("en", "alice", *values)

    bob = root.visitor("bob")
    assert bob.workspace != alice.workspace and not bob.config_path.exists()
    # Bob's page load shows the first-time config, not Alice's data
    loaded = cfg.on_load("en", "bob")
    assert loaded[cfg.field("data.pairs_path")] != str(alice_copy)
    # naming Alice's file, by its full path or by a way out of Bob's folder, is refused everywhere
    sneaky = f"../{alice.workspace.name}/data/{alice_copy.name}"
    for path in (str(alice_copy), sneaky):
        bob_values = list(values)
        bob_values[paths.index("data.pairs_path")] = path
        config, errors = ct.validate(bob, bob_values)
        assert config is None and any(e.startswith("data.pairs_path") for e in errors), errors
        assert bob.refuse_path(path, "corpus") and bob.refuse_path(path, "pairs")  # the Search and Evaluate tabs
    # the corpus Bob's Search tab offers is his own data, never Alice's
    assert str(alice.workspace) not in search.default_corpus(None, "bob")
    # Alice herself may use it
    assert alice.refuse_path(str(alice_copy), "corpus") is None


def test_a_path_inside_the_visitors_folder_as_typed_is_never_read_from_the_servers_working_directory(
        tmp_path, monkeypatch):
    """The form accepts `ws/visitors/<other>/data/x.jsonl`: as typed it lies inside Bob's folder (and is not
    there). The Search tab's corpus and the Config tab's language check opened the same text from the server's
    working directory, where it is Alice's file: her rows were copied into Bob's corpus, and her data's language
    was reported to him. Now both read what the loaders read, inside Bob's folder."""
    from embedgui.ui.app import create_app

    monkeypatch.chdir(tmp_path)  # the operator started the app here, with the workspace `ws`
    demo = create_app(AppContext.create("ws", hosted=True))
    tabs, root = demo.ui.tabs, demo.ui.ctx
    cfg, search = tabs["config"], tabs["search"]
    alice = root.visitor("alice")
    (alice.data_dir / "notes.jsonl").write_text('{"anchor": "비밀", "positive": "앨리스의 비밀 메모"}\n' * 5)
    typed = f"ws/visitors/{alice.workspace.name}/data/notes.jsonl"
    bob = root.visitor("bob")
    values = ct.config_to_values(ct.workspace_config(bob))
    paths = [spec.path for spec in ct.field_specs()]
    values[paths.index("data.pairs_path")] = typed
    values[paths.index("data.eval_path")] = "ws/.browser_secret"
    config, errors = ct.validate(bob, values)
    assert config is not None and not errors  # inside Bob's folder as typed: saved, noted as missing
    cfg.save("en", "bob", *values)
    shown = ct.validation_markdown("en", errors, config)
    assert "Korean" not in shown and typed in shown  # no language warning from Alice's file; named as missing
    corpus = search.default_corpus(None, "bob")
    read = Path(corpus).read_text() if corpus else ""
    assert "앨리스" not in read and root.browser_secret() not in read


def test_the_time_limit_holds_for_a_run_in_its_own_process_and_counts_every_start(tmp_path, tiny_bert):
    """The app trains in a child process: the cap goes with it, and the seconds used are kept for a resume."""
    from embedgui.engine.runner import HOSTED_NAME, Run

    config = _limited_config(tmp_path, tiny_bert, steps_per_epoch=100000)
    run = Run(single_user=False, max_minutes=0.02)  # 1.2 s of training, far fewer than the steps asked for
    run.start(config, owner="visitor")
    assert run.wait(180)
    snap = run.snapshot()
    assert snap.status == "stopped" and 0 < snap.step < 100000, (snap.status, snap.step, snap.message)
    assert "limit of this app was reached" in snap.message
    used = json.loads((tmp_path / "runs" / "limited" / HOSTED_NAME).read_text())["seconds"]
    assert used >= 1.2
    run.start(config, resume=True, owner="visitor")  # the minutes are spent: one more step at most, then saved
    assert run.wait(180)
    again = run.snapshot()
    assert again.status == "stopped" and again.step <= snap.step + 1, (again.step, snap.step, again.message)


def test_the_key_of_the_browsers_stored_id_outlives_a_restart(tmp_path):
    """A visitor's id is stored encrypted in their browser; a new key at each start would lose every visitor's
    workspace and runs on a restart."""
    first = AppContext.create(tmp_path / "ws", hosted=True).browser_secret()
    again = AppContext.create(tmp_path / "ws", hosted=True).browser_secret()  # a new process, the same workspace
    assert first == again and len(first) >= 24
    assert (tmp_path / "ws" / ".browser_secret").stat().st_mode & 0o077 == 0  # readable by the app only
    assert AppContext.create(tmp_path / "other", hosted=True).browser_secret() != first


def _age(folder: Path, days: float) -> None:
    """Make everything in folder look last touched `days` ago."""
    when = time.time() - days * 86400
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (when, when))


def test_folders_of_visitors_gone_for_a_week_are_removed_but_not_one_whose_run_goes(tmp_path, tiny_bert,
                                                                                     monkeypatch):
    """A hosted app's disk filled with the folders of every visitor who ever came; now an unvisited one goes after
    keep_days (the visit is recorded), never while its run trains, and the visitor gets a fresh folder back."""
    from embedgui.ui.context import SEEN_NAME

    ctx = AppContext.create(tmp_path / "ws", hosted=True)
    gone, busy, recent = (ctx.visitor(name) for name in ("gone", "busy", "recent"))
    (gone.data_dir / "upload.csv").write_text("term,definition\nalpha,one\n")
    assert (gone.workspace / SEEN_NAME).exists()  # a visit is recorded
    for visitor in (gone, busy, recent):
        _age(visitor.workspace, 3 if visitor is recent else 8)
    config = _limited_config(tmp_path, tiny_bert, steps_per_epoch=100000)
    config.output.save_dir = str(busy.runs_dir)
    ctx.run.start(config, owner="busy")
    try:
        removed = ctx.sweep()
        assert ctx.run.active
    finally:
        ctx.run.stop("busy")
        assert ctx.run.wait(180)
    assert removed == [gone.workspace] and not gone.workspace.exists()
    assert busy.workspace.exists() and recent.workspace.exists()
    back = ctx.visitor("gone")  # the same browser returns: an empty workspace again, not an error
    assert back.data_dir.is_dir() and not any(back.data_dir.iterdir())
    # a workspace from before .last_seen files counts its newest file as the last visit
    (recent.workspace / SEEN_NAME).unlink()
    (recent.data_dir / "new.csv").write_text("x")
    assert recent.workspace not in ctx.sweep()
    # EMBEDGUI_HOSTED_KEEP_DAYS=0 keeps every folder (the sweep at the app's start included)
    _age(recent.workspace, 30)
    monkeypatch.setenv("EMBEDGUI_HOSTED_KEEP_DAYS", "0")
    keep_all = AppContext.create(tmp_path / "ws", hosted=True)
    assert recent.workspace not in keep_all.sweep() and recent.workspace.exists()


def test_download_copies_of_a_hosted_app_are_removed_after_a_day(tmp_path):
    ctx = AppContext.create(tmp_path / "ws", hosted=True)
    source = tmp_path / "config.json"
    source.write_text("{}")
    old, new = Path(ctx.servable(source)).parent, Path(ctx.servable(source)).parent
    _age(old, 2)
    removed = ctx.sweep()
    assert old in removed and not old.exists() and new.exists()


def test_a_file_given_as_the_model_is_a_problem_of_the_form_not_a_crash(tmp_path):
    """The form's notes look into the model folder for its prompts: a file there must not break the handler."""
    config = Config(model_id=str(tmp_path / "weights.bin"))
    (tmp_path / "weights.bin").write_bytes(b"0")
    assert ct.model_prompts_note(config, "en") == ""


def test_the_hosted_flag_reaches_every_layer(monkeypatch):
    """launch.py --hosted turns on the checks that ask the environment (a run folder's trust_remote_code)."""
    import launch
    from embedgui.engine.hosted import is_hosted

    monkeypatch.setenv("EMBEDGUI_HOSTED", "")  # recorded, so what launch.main sets is undone after the test
    monkeypatch.delenv("SPACE_ID", raising=False)
    seen = {}

    class Stop(Exception):
        pass

    def fake_create(workspace, hosted=None):
        seen["hosted"], seen["env"] = hosted, is_hosted()
        raise Stop

    monkeypatch.setattr("embedgui.ui.context.AppContext.create", staticmethod(fake_create))
    with pytest.raises(Stop):
        launch.main(["--hosted", "--workspace", "unused"])
    assert seen == {"hosted": True, "env": True}


def test_a_hosted_process_sends_no_implicit_token_and_has_an_empty_working_directory(tmp_path, monkeypatch):
    """launch.py on a hosted app: the operator's HF_TOKEN is never sent for a visitor's model name (a private or
    gated repository would load with the operator's rights), and a Hub-shaped name that is a folder in the server's
    working directory can neither be opened by the model loader nor told apart from a Hub id."""
    import huggingface_hub.constants as hub_constants
    from huggingface_hub.utils import build_hf_headers

    import launch

    server = tmp_path / "server"
    (server / "org" / "model").mkdir(parents=True)
    monkeypatch.chdir(server)  # restored after the test, as the flag and the environment below
    monkeypatch.setenv("EMBEDGUI_HOSTED", "")
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_OPERATORsecret123456")
    monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "")
    monkeypatch.setattr(hub_constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", False)
    assert "authorization" in {k.lower() for k in build_hf_headers()}  # the leak this closes
    seen = {}

    class Stop(Exception):
        pass

    def fake_create_app(ctx):
        seen["ctx"] = ctx
        raise Stop

    monkeypatch.setattr("embedgui.ui.app.create_app", fake_create_app)
    with pytest.raises(Stop):
        launch.main(["--hosted", "--workspace", "ws"])
    ctx = seen["ctx"]
    assert ctx.workspace == server / "ws"  # resolved where the operator started the app
    assert Path.cwd() != server and not any(Path.cwd().iterdir())
    assert "authorization" not in {k.lower() for k in build_hf_headers()}
    assert build_hf_headers(token="hf_VISITORtoken123456")["authorization"].endswith("hf_VISITORtoken123456")
    empty = Path.cwd()
    visitor = ctx.visitor("alice")  # the same answer as for any Hub id: no oracle, and nothing local opens
    assert visitor.resolve("org/model", "model") == "org/model" and not visitor.refuse_path("org/model", "model")
    os.chdir(server)
    empty.rmdir()


def test_a_visitor_watching_anothers_run_does_not_see_their_paths(tmp_path):
    """Every visitor of a hosted app may watch the run that is training, but its folder and the names of the files
    its owner uploaded are the owner's: the watcher's page shows "…" in their place; the owner's shows them."""
    from embedgui.engine.runner import RunSnapshot
    from embedgui.ui.app import create_app

    ctx = AppContext.create(tmp_path / "ws", hosted=True)
    folder = ctx.visitor("alice").workspace
    upload = folder / "data" / "upload-20261206-070000-alice_private.jsonl"
    snap = RunSnapshot(status="failed", step=3, max_steps=10, run_dir=str(folder / "runs" / "r"),
                       message=f'{upload}:1: "anchor" is missing; every row needs non-empty anchor and positive text.',
                       log_lines=[f"INFO Mined 1 hard negative a row into {upload.with_suffix('.mined.jsonl')}"])

    class AlicesRun:
        active, current_dir = False, snap.run_dir

        def snapshot(self):
            return snap

        def can_control(self, owner, run_dir=None):
            return owner == "alice"

    ctx.run = AlicesRun()
    train = create_app(ctx).ui.tabs["train"]
    for owner, sees in (("bob", False), ("alice", True)):
        out = train.tick("en", None, False, "", None, owner)
        shown = out[train.message] + out[train.log] + out[train.progress]
        assert ("alice_private" in shown) is sees and (str(folder) in shown) is sees, (owner, shown)
        assert '"anchor" is missing' in out[train.message]  # what went wrong is still said


def test_what_a_watcher_sees_hides_uploads_with_spaces_anonymous_folders_and_the_install_path(tmp_path):
    """Gaps in the watcher's "…": an upload named with spaces showed its name after the first space, the folder
    of an API caller without an id (visitors/anonymous) was cut after its first letter, and a traceback named the
    app's install folder. Uploads are now saved under safe names, and the watcher's text hides the rest."""
    from embedgui.ui.app import create_app
    from embedgui.ui.train_view import hide_visitor_paths

    demo = create_app(AppContext.create(tmp_path / "ws", hosted=True))
    data, root = demo.ui.tabs["data"], demo.ui.ctx
    upload = tmp_path / "ACME payroll (Q3).csv"
    upload.write_text("term,definition\nalpha,first private note\nbeta,second private note\n")
    saved = Path(data.accept_upload(str(upload), "en", "alice")[data.table_path])
    assert saved.parent == root.visitor("alice").data_dir and " " not in saved.name and "payroll" in saved.name
    anonymous = root.visitor("").workspace / "data" / "notes.jsonl"
    traceback = ('Traceback (most recent call last):\n  File "/opt/app/embedgui/engine/trainer.py", line 12, in fit\n'
                 "ValueError: bad")
    for text in (f"{saved}:3: invalid JSON", f"{anonymous}: not found", traceback):
        hidden = hide_visitor_paths(text)
        assert "payroll" not in hidden and "nonymous" not in hidden and "/opt/app" not in hidden, hidden
    assert hide_visitor_paths(f"{saved}:3: invalid JSON") == "…:3: invalid JSON"
    assert "line 12, in fit" in hide_visitor_paths(traceback) and "ValueError: bad" in hide_visitor_paths(traceback)
