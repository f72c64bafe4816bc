"""A hosted app in two real browsers: each visitor works in a workspace of their own, and cannot reach the other's.

Alice uploads a file and composes her training data; Bob, in another browser, sees none of it, and naming Alice's
file (in the Config form, or as the Search tab's corpus) is refused with a sentence that says nothing about it.
"""

from __future__ import annotations

import pytest
from browser_support import artifacts, browser_pages, field, require_browser, running_app

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_two_visitors_of_a_hosted_app_never_see_each_others_data(tmp_path):
    require_browser()
    workspace = tmp_path / "ws"
    workspace.mkdir()
    secret = tmp_path / "alice_secret.csv"
    secret.write_text("term,definition\n" + "".join(f"zyx{i},Alice's private note number {i} about zyx\n"
                                                   for i in range(12)))
    with running_app(workspace, None, hosted=True) as url, browser_pages(url, 2) as (alice, bob):
        try:
            alice.get_by_role("tab", name="1. Data").click()
            alice.locator("#data-upload input[type=file]").set_input_files(str(secret))
            alice.wait_for_function("() => document.querySelector('#data-message').innerText.includes('12 rows')")
            alice.locator("#data-compose").click()
            alice.wait_for_function("() => document.querySelector('#data-report').innerText.includes('pairs')")
            alices = alice.locator("#data-current textarea, #data-current input").first.input_value()
            assert "/visitors/" in alices and alices.endswith(".jsonl")
            visitors = [p for p in (workspace / "visitors").iterdir() if (p / "data").is_dir()]
            assert any(alices.startswith(str(p)) for p in visitors)

            # Bob's page: the first-time data, not Alice's, also after a reload
            bob.reload()
            bob.wait_for_selector("#language")
            bob.get_by_role("tab", name="1. Data").click()
            bobs = bob.locator("#data-current textarea, #data-current input").first.input_value()
            assert bobs != alices and "zyx" not in bobs
            # naming Alice's file in Bob's Config form is refused
            bob.get_by_role("tab", name="2. Config").click()
            pairs = field(bob, "data.pairs_path")
            pairs.fill("")
            pairs.press_sequentially(alices)  # typed: Gradio's input event follows keys, not a programmatic fill
            pairs.press("Tab")
            bob.wait_for_function("() => document.querySelector('#config-validation').innerText.includes("
                                  "'outside the app')")
            # and as the Search tab's corpus
            bob.get_by_role("tab", name="5. Search").click()
            corpus = bob.locator("#search-corpus textarea, #search-corpus input").first
            assert "zyx" not in corpus.input_value()
            corpus.fill(alices)
            bob.locator("#search-query textarea, #search-query input").first.fill("zyx")
            bob.locator("#search-run").click()
            bob.wait_for_function("() => document.querySelector('#search-message').innerText.includes("
                                  "'outside the app')")
            assert "private note" not in bob.locator("#search-tuned").inner_text()
            assert "private note" not in bob.locator("#search-base-hits").inner_text()
            bob.screenshot(path=str(artifacts() / "hosted-refused.png"), full_page=True)
            holding = {p.parent.parent.name for p in (workspace / "visitors").glob("*/data/*") if p.is_file()}
            assert holding == {alices.split("/visitors/")[1].split("/")[0]}  # only Alice's folder holds data

            # Alice's page keeps her data after a reload: her browser keeps its id
            alice.reload()
            alice.wait_for_selector("#language")
            alice.get_by_role("tab", name="1. Data").click()
            alice.wait_for_function("(path) => document.querySelector('#data-current textarea, #data-current input')"
                                    ".value === path", arg=alices)
        except Exception:
            alice.screenshot(path=str(artifacts() / "hosted-alice-failure.png"), full_page=True)
            bob.screenshot(path=str(artifacts() / "hosted-bob-failure.png"), full_page=True)
            print((workspace / "app.log").read_text()[-5000:])
            raise
