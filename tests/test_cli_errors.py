"""Command-line mistakes end in one sentence before any work is done, and leave nothing behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "embedgui", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})


@pytest.fixture()
def table(tmp_path) -> Path:
    path = tmp_path / "glossary.csv"
    path.write_text("term,definition\n" + "".join(f"term {i},definition number {i} of a word\n" for i in range(12)))
    return path


def test_compose_output_naming_a_folder_is_refused_before_work(tmp_path, table):
    (tmp_path / "out").mkdir()
    result = cli("compose", "--input", str(table), "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 1
    assert "--output" in result.stderr and "is a folder" in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*.tmp"))


def test_compose_into_an_unwritable_folder_is_refused(tmp_path, table):
    # /proc refuses new files even to root (chmod does not stop root)
    result = cli("compose", "--input", str(table), "--output", "/proc/pairs.jsonl", cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot write in /proc" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_eval_json_naming_a_folder_is_refused_before_evaluating(tmp_path, tiny_bert):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"anchor": f"a{i}", "positive": f"p{i}"}) + "\n" for i in range(3)))
    (tmp_path / "out").mkdir()
    result = cli("eval", "--model-dir", str(tiny_bert), "--pairs", str(pairs), "--json", str(tmp_path / "out"),
                 cwd=tmp_path)
    assert result.returncode == 2
    assert "--json" in result.stderr and "is a folder" in result.stderr
    assert "queries" not in result.stderr  # refused before anything was computed


def test_search_with_an_empty_query_is_refused(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("one\ntwo\n")
    result = cli("search", "--model-dir", "x", "--corpus", str(corpus), "--query", "  ", cwd=tmp_path)
    assert result.returncode == 2 and "--query is empty" in result.stderr
