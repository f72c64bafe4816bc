"""End to end in a real browser: Debian's chromium driven by Playwright against the app on 127.0.0.1.

Upload a CSV, compose pairs, train the packaged MiniLM for a few steps while the loss chart fills, stop,
evaluate, search, switch to Korean. Screenshots go to artifacts/browser/ (EMBEDGUI_ARTIFACTS overrides).
"""

from __future__ import annotations

import json
import re
import shutil

import pytest
from browser_support import (
    artifacts,
    browser_pages,
    chart_steps,
    quick_config,
    require_browser,
    running_app,
    wait_points,
    wait_status,
)
from conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    require_browser()
    workspace = tmp_path_factory.mktemp("workspace")
    with running_app(workspace, quick_config(workspace)) as url:
        yield url, workspace


@pytest.fixture(scope="module")
def pages(app):
    """Two pages in contexts of their own (one playwright per process): the journey's, and a fresh visitor's."""
    with browser_pages(app[0], 2) as both:
        yield both


@pytest.fixture
def page(pages):
    return pages[0]


def chart_points(pg, elem_id: str) -> int:
    return len(chart_steps(pg, elem_id))


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
    wait_points(pg, 3)
    assert chart_points(pg, "chart-loss") >= 3 and chart_points(pg, "chart-acc") >= 3
    pg.screenshot(path=str(shot / "2-train-running.png"), full_page=True)
    pg.locator("#train-stop").click()
    wait_status(pg, "stopped")
    (run_dir,) = [p for p in (workspace / "runs").iterdir() if (p / "train_config.json").exists()]
    assert (run_dir / "model.safetensors").exists() and (run_dir / "metrics.jsonl").exists()
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) >= 3 and rows[0]["step"] == 1

    # 3. Evaluate the stopped run against the base model.
    pg.get_by_role("tab", name="4. Evaluate").click()
    pg.get_by_role("button", name="Refresh list").click()
    pg.wait_for_function("() => document.querySelector('#eval-model input').value.includes('" + run_dir.name + "')")
    pg.locator("#eval-run").click()
    pg.wait_for_function("() => document.querySelector('#eval-message').innerText.includes('queries')",
                         timeout=180_000)
    table = pg.locator("#eval-table").inner_text()
    assert "recall@1" in table and "ndcg@10" in table and "delta" in table
    # the composed eval file is small: the page says so, with the number of queries
    message = pg.locator("#eval-message").inner_text()
    assert "Only" in message and "queries" in message and "eval file" in message
    pg.screenshot(path=str(shot / "3-eval.png"), full_page=True)

    # 4. Search the training corpus with both models.
    pg.get_by_role("tab", name="5. Search").click()
    pg.locator("#search-query textarea, #search-query input").first.fill("learning rate schedule")
    pg.locator("#search-run").click()
    scores = "(id) => (document.querySelector(id).innerText.match(/\\b[01]\\.\\d{2,4}\\b/g) || []).length"
    pg.wait_for_function(f"() => ({scores})('#search-tuned') >= 5", timeout=180_000)
    assert pg.evaluate(f"() => ({scores})('#search-base-hits')") >= 5
    assert "schedule" in pg.locator("#search-tuned").inner_text().lower()
    assert "term" in pg.locator("#search-tuned").inner_text()  # each hit shows its term next to its text
    pg.screenshot(path=str(shot / "4-search.png"), full_page=True)

    # 5. Switch the language: labels, buttons and tabs follow.
    pg.get_by_label("한국어").check()
    pg.wait_for_function("() => document.querySelector('#search-run').innerText.includes('검색')")
    pg.get_by_role("tab", name="3. 학습").click()
    assert "시작" in pg.locator("#train-start").inner_text()
    pg.wait_for_function("() => document.querySelector('#train-progress').innerText.includes('중지됨')")
    assert "스텝" in pg.locator("#train-progress").inner_text()  # the progress line follows the language
    assert "용어" in pg.locator("#runs-table").inner_text() or "학습" in pg.locator("#runs-table").inner_text()
    assert "시작" in pg.locator("#train-start").inner_text() and "학습" in pg.locator("#train-resume").inner_text()
    assert "새 학습을" in pg.locator("#train-notice").inner_text()  # the Start notice follows the language too
    pg.screenshot(path=str(shot / "5-korean.png"), full_page=True)
    pg.get_by_role("tab", name="1. 데이터").click()
    pg.get_by_text("용어집 웹페이지 크롤링").wait_for()
    assert pg.get_by_text("pairs.jsonl 만들기").count() >= 1


KOREAN_TERMS = [
    ("네트워크", "여러 컴퓨터가 자료를 주고받도록 연결한 체계"),
    ("라우터", "서로 다른 네트워크 사이에서 패킷의 길을 정하는 장치"),
    ("스위치", "같은 네트워크 안에서 프레임을 목적지 포트로 보내는 장치"),
    ("방화벽", "정해진 규칙에 따라 드나드는 통신을 막거나 허용하는 보안 장치"),
    ("대역폭", "일정한 시간 동안 전송할 수 있는 자료의 최대량"),
    ("지연 시간", "자료가 출발지에서 목적지까지 가는 데 걸리는 시간"),
    ("패킷", "네트워크로 보내기 위해 나눈 자료의 단위"),
    ("프로토콜", "통신하는 쪽들이 지키기로 한 규칙의 모음"),
    ("서브넷", "하나의 네트워크를 나눈 더 작은 네트워크"),
    ("게이트웨이", "서로 다른 네트워크를 잇는 출입구 역할의 장치"),
    ("도메인 이름", "사람이 읽기 쉬운 형태로 쓴 인터넷 주소"),
    ("캐시", "자주 쓰는 자료를 빨리 꺼내도록 임시로 저장하는 곳"),
    ("암호화", "허가받지 않은 사람이 읽지 못하도록 자료를 바꾸는 일"),
    ("인증", "사용자나 장치가 누구인지 확인하는 절차"),
    ("프록시", "클라이언트를 대신해 다른 서버에 요청을 보내는 서버"),
    ("포트", "한 컴퓨터 안에서 통신하는 프로그램을 구별하는 번호"),
]


def test_korean_from_the_first_click(app, pages, tmp_path):
    """A Korean user's page: upload a CP949 file, compose, start, in Korean. What the app writes reads in Korean,
    and the English-only default model on Korean data gets a warning that suggests a multilingual model."""
    url, workspace = app
    csv = tmp_path / "네트워크_용어.csv"
    csv.write_bytes(("용어,정의\n" + "".join(f"{a},{b}\n" for a, b in KOREAN_TERMS)).encode("cp949"))
    english = r"\b[a-z]{3,} [a-z]{3,} [a-z]{3,}\b"  # three English words in a row: a sentence left untranslated
    pg = pages[1]
    pg.reload()  # the page as it is now, not as it was when the module started
    pg.wait_for_selector("#language")
    pg.get_by_label("한국어").check()
    pg.get_by_role("tab", name="1. 데이터").click()
    pg.locator("#data-upload input[type=file]").set_input_files(str(csv))
    pg.wait_for_function("() => document.querySelector('#data-message').innerText.includes('16행')")
    message = pg.locator("#data-message").inner_text()
    assert "cp949" in message.lower() and not re.search(english, message), message
    pg.locator("#data-compose").click()
    pg.wait_for_function("() => document.querySelector('#data-report').innerText.includes('학습 쌍')")
    report = pg.locator("#data-report").inner_text()
    assert not re.search(english, report), report
    pg.get_by_role("tab", name="3. 학습").click()
    pg.locator("#train-start").click()
    pg.wait_for_function("() => document.querySelector('#train-notice').innerText.includes('다국어')")
    wait_points(pg, 2)
    progress = pg.locator("#train-progress-box").inner_text()
    assert "스텝" in progress and not re.search(english, progress), progress
    axis = pg.evaluate("() => document.querySelector('#chart-loss .js-plotly-plot').layout.xaxis.title.text")
    assert axis == "스텝"
    pg.screenshot(path=str(artifacts() / "korean-start.png"), full_page=True)
    # Was: a reload mid-run lost the warning (it lived only in the page that pressed Start)
    pg.reload()
    pg.wait_for_selector("#language")
    pg.get_by_role("tab", name="3. 학습").click()
    pg.wait_for_function("() => document.querySelector('#train-notice').innerText.includes('다국어')")
    pg.wait_for_function("() => !document.querySelector('#train-stop').disabled")
    pg.locator("#train-stop").click()
    wait_status(pg, "stopped")
    headers = pg.locator("#runs-table thead").inner_text()
    assert "상태" in headers and "status" not in headers, headers

    # A reload comes back in Korean (the choice is kept in the browser), and back in English once English is chosen.
    pg.reload()
    pg.wait_for_selector("#language")
    pg.get_by_role("tab", name="3. 학습").click()
    assert pg.get_by_label("한국어").is_checked()
    headers = pg.locator("#runs-table thead").inner_text()
    assert "상태" in headers and "status" not in headers, headers
    assert "이 작업 공간의 모든 학습" in pg.locator("#runs-table").inner_text()  # its label follows too
    pg.get_by_label("English").check()
    pg.get_by_role("tab", name="3. Train").wait_for()
    pg.reload()
    pg.wait_for_selector("#language")
    pg.get_by_role("tab", name="3. Train").wait_for()
    assert pg.get_by_label("English").is_checked()
