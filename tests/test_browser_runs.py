"""In a real browser: what the form shows is what trains and survives a reload; every run is kept and exported.

One walk: edit a config field, reload (the edit is still there, empty optional boxes still empty), Start (Start
is disabled while it runs, the precision and its reason are shown), Stop, Resume (the charts show the whole run
from step 1; the saved config never says resume), start a second run, see both in the run list, export one as a
zip and download it. Screenshots go to artifacts/browser/ (EMBEDGUI_ARTIFACTS overrides).
"""

from __future__ import annotations

import json
import zipfile

import pytest
from browser_support import (
    artifacts,
    browser_page,
    chart_steps,
    field,
    quick_config,
    require_browser,
    running_app,
    wait_points,
    wait_status,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def saved(workspace) -> dict:
    return json.loads((workspace / "config.json").read_text())


def run_folders(workspace) -> list:
    return sorted(p for p in (workspace / "runs").glob("*") if (p / "train_config.json").exists())


def test_form_reload_runs_resume_and_export(tmp_path):
    require_browser()
    workspace = tmp_path / "ws"
    workspace.mkdir()
    with running_app(workspace, quick_config(workspace)) as url, browser_page(url) as pg:
        try:
            walk(pg, workspace, tmp_path)
        except Exception:
            pg.screenshot(path=str(artifacts() / "runs-failure.png"), full_page=True)
            print((workspace / "app.log").read_text()[-5000:])
            raise


def walk(pg, workspace, tmp_path):
    shot = artifacts()
    # 1. Config: empty optional boxes show empty (not 0); an edit is saved to the workspace config as typed.
    pg.get_by_role("tab", name="2. Config").click()
    assert field(pg, "data.max_hard_negatives").input_value() == ""
    assert field(pg, "train.pad_to_multiple_of").input_value() == ""
    batch = field(pg, "train.batch_size")
    batch.fill("6")
    batch.press("Tab")
    pg.wait_for_function("() => document.querySelector('#config-validation').innerText.includes('valid')")
    pg.wait_for_timeout(1500)
    config = saved(workspace)
    assert config["train"]["batch_size"] == 6 and config["train"]["steps_per_epoch"] == 400
    assert config["data"]["max_hard_negatives"] is None and config["train"]["pad_to_multiple_of"] is None
    assert config["optim"]["max_grad_norm"] == 1.0
    pg.screenshot(path=str(shot / "config-form.png"), full_page=True)

    # 2. Reload: the form shows the saved config, not the one the app started with.
    pg.reload()
    pg.wait_for_selector("#language")
    pg.get_by_role("tab", name="2. Config").click()
    pg.wait_for_function("() => document.querySelector('#cfg-train-batch_size input').value === '6'")
    assert field(pg, "data.max_hard_negatives").input_value() == ""

    # 3. Start: Start and Resume are disabled while it runs; precision and why are shown.
    pg.get_by_role("tab", name="3. Train").click()
    pg.locator("#train-start").click()
    wait_points(pg, 3)
    assert pg.locator("#train-start").is_disabled() and pg.locator("#train-resume").is_disabled()
    assert "float32" in pg.locator("#train-precision").inner_text()
    pg.locator("#train-stop").click()
    wait_status(pg, "stopped")
    pg.wait_for_function("() => !document.querySelector('#train-start').disabled")
    first = run_folders(workspace)
    assert len(first) == 1 and first[0].name != "browser-run"  # a new folder named by time and model
    stopped_at = max(chart_steps(pg))
    # What trained is what the form showed: the run's own config and summary, not only the page.
    trained = json.loads((first[0] / "train_config.json").read_text())
    assert trained["train"]["batch_size"] == 6 and trained["data"]["max_hard_negatives"] is None
    summary = json.loads((first[0] / "metrics_summary.json").read_text())
    assert summary["hard_negatives_per_row"]["limit"] is None and summary["precision"] == "float32"

    # 4. Resume: continues the same folder; the chart shows the whole run from step 1; the config never says resume.
    pg.locator("#train-resume").click()
    pg.wait_for_function("() => document.querySelector('#train-progress')?.dataset.status !== 'stopped'")
    pg.wait_for_function(f"() => Number(document.querySelector('#train-progress')?.dataset.step) > {stopped_at + 1}",
                         timeout=180_000)
    # the charts follow a page every few seconds while a run trains (the progress line every tick)
    pg.wait_for_function("() => { const p = document.querySelector('#chart-loss .js-plotly-plot');"
                         f" return p && p.data && p.data[0] && Math.max(...p.data[0].x) > {stopped_at}; }}",
                         timeout=60_000)
    steps = chart_steps(pg)
    assert steps[0] == 1 and max(steps) > stopped_at
    assert saved(workspace)["train"].get("resume") is False
    pg.locator("#train-stop").click()
    wait_status(pg, "stopped")
    assert run_folders(workspace) == first
    assert json.loads((first[0] / "train_config.json").read_text())["train"]["resume"] is False

    # 5. A second run: a second folder; both in the run list.
    pg.locator("#train-start").click()
    pg.wait_for_function("() => ['starting', 'running'].includes(document.querySelector('#train-progress')"
                         "?.dataset.status)")
    pg.wait_for_function("() => Number(document.querySelector('#train-progress')?.dataset.step) >= 2",
                         timeout=180_000)
    pg.locator("#train-stop").click()
    wait_status(pg, "stopped")
    folders = run_folders(workspace)
    assert len(folders) == 2 and first[0] in folders
    names = [f.name for f in folders]
    pg.wait_for_function(f"() => {{ const t = document.querySelector('#runs-table').innerText;"
                         f" return t.includes('{names[0]}') && t.includes('{names[1]}'); }}")
    pg.screenshot(path=str(shot / "runs-list.png"), full_page=True)

    # 6. Export the first run as a zip and download it.
    pg.locator("#runs-pick input").click()
    pg.get_by_role("option", name=first[0].name).click()
    pg.get_by_text("Export and share").click()
    pg.locator("#runs-zip").click()
    link = pg.locator("#runs-zip-file a").first
    link.wait_for()
    with pg.expect_download() as info:
        link.click()
    target = tmp_path / "model.zip"
    info.value.save_as(target)
    with zipfile.ZipFile(target) as z:
        members = z.namelist()
    assert any(m.endswith("modules.json") for m in members) and any(m.endswith("README.md") for m in members)
    pg.screenshot(path=str(shot / "runs-export.png"), full_page=True)
