"""resolve_user_path: the one resolver that the loaders and the hosted check share."""

from __future__ import annotations

import os

import pytest

from embedgui.engine.paths import PathRefused, resolve_user_path


@pytest.fixture()
def layout(tmp_path, monkeypatch):
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "secret.jsonl").write_text('{"anchor": "a", "positive": "b"}\n')
    ws = tmp_path / "app" / "workspace"
    (ws / "data").mkdir(parents=True)
    (ws / "data" / "pairs.jsonl").write_text('{"anchor": "a", "positive": "b"}\n')
    monkeypatch.chdir(tmp_path / "app")  # the server's working directory is not the workspace
    return ws, outside


def test_relative_path_resolves_beside_the_config_then_the_cwd(layout):
    ws, _ = layout
    assert resolve_user_path("data/pairs.jsonl", ws) == ws / "data" / "pairs.jsonl"
    assert resolve_user_path("workspace/data/pairs.jsonl", ws) == ws.parent / "workspace/data/pairs.jsonl"


@pytest.mark.parametrize("value", [
    "data/../../../secret/secret.jsonl",  # the reported hole: first part exists only in the workspace
    "../../secret/secret.jsonl",
    "{outside}/secret.jsonl",
    "~/secret.jsonl",
])
def test_hosted_refuses_anything_outside(layout, value):
    ws, outside = layout
    with pytest.raises(PathRefused, match="outside the app's folders"):
        resolve_user_path(value.format(outside=outside), ws, roots=[ws], field="data.pairs_path")


def test_refusal_does_not_reveal_whether_a_file_exists(layout):
    ws, outside = layout
    messages = []
    for name in ("secret.jsonl", "missing.jsonl"):
        with pytest.raises(PathRefused) as e:
            resolve_user_path(f"data/../../../secret/{name}", ws, roots=[ws], field="data.pairs_path")
        messages.append(str(e.value).replace(name, "X"))
    assert messages[0] == messages[1]


def test_symlink_inside_the_workspace_to_outside_is_refused(layout):
    ws, outside = layout
    os.symlink(outside / "secret.jsonl", ws / "data" / "link.jsonl")
    os.symlink(outside, ws / "data" / "dirlink")
    for value in ("data/link.jsonl", "data/dirlink/secret.jsonl"):
        with pytest.raises(PathRefused):
            resolve_user_path(value, ws, roots=[ws])
    assert resolve_user_path("data/link.jsonl", ws) == ws / "data" / "link.jsonl"  # local use: links are fine


def test_hub_ids_pass_and_files_inside_are_found(layout):
    ws, _ = layout
    assert resolve_user_path("sentence-transformers/all-MiniLM-L6-v2", ws, roots=[ws], hub_ok=True) is None
    assert resolve_user_path("data/pairs.jsonl", ws, roots=[ws]) == ws / "data" / "pairs.jsonl"
    # not a hub id and not there: the loader gets the path and says "not found"
    assert resolve_user_path("./data/none.jsonl", ws, roots=[ws], hub_ok=True) == ws / "data" / "none.jsonl"


def test_hosted_never_falls_back_to_the_cwd(layout):
    ws, _ = layout
    assert resolve_user_path("workspace/data/pairs.jsonl", ws, roots=[ws]) == ws / "workspace/data/pairs.jsonl"


def test_pairs_loader_uses_the_same_resolver(layout):
    from embedgui.engine.data import PairsError, find_pairs_path

    ws, outside = layout
    assert find_pairs_path("data/pairs.jsonl", str(ws), roots=[ws]) == ws / "data" / "pairs.jsonl"
    with pytest.raises(PathRefused):
        find_pairs_path("data/../../../secret/secret.jsonl", str(ws), roots=[ws])
    with pytest.raises(PairsError, match="is a folder; give the pairs file inside it"):
        find_pairs_path("data", str(ws))
