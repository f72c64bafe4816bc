from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from embedgui.__main__ import main
from embedgui.engine.search import (
    CorpusError,
    Hit,
    SearchIndex,
    SearchIndexError,
    cosine_top_k,
    load_corpus,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CORPUS = [
    "gradient descent lowers the loss step by step",
    "a vector embedding of a sentence",
    "the query and the document get a score",
    "batch learning with a neural network",
    "glossary term and its definition",
    "memory of the machine",
    "émigré naïve café — non-ASCII text",
]


@pytest.fixture(scope="module")
def model_dir(tiny_bert, tmp_path_factory):
    """The tiny BERT saved as the trainer saves models (HF + sentence-transformers files, 64-token limit)."""
    from embedgui.engine.modeling import load_embedder

    folder = tmp_path_factory.mktemp("tiny-st")
    load_embedder(str(tiny_bert), device="cpu", max_length=64).save(folder)
    return folder


@pytest.fixture(scope="module")
def embedder(model_dir):
    from embedgui.engine.modeling import load_embedder

    return load_embedder(str(model_dir), device="cpu")


# -- exact top-k --------------------------------------------------------------------------------------------

def reference_top_k(q: torch.Tensor, c: torch.Tensor, k: int) -> tuple[list[list[float]], list[list[int]]]:
    """Full score matrix, then each row sorted by (score descending, index ascending) in plain Python."""
    scores = (F.normalize(q, dim=-1) @ F.normalize(c, dim=-1).T).tolist()
    order = [sorted(range(len(row)), key=lambda i, row=row: (-row[i], i))[:k] for row in scores]
    return [[row[i] for i in o] for row, o in zip(scores, order)], order


def test_chunked_top_k_equals_unchunked_with_ties():
    g = torch.Generator().manual_seed(0)
    queries = torch.randn(23, 8, generator=g)
    # Half the corpus are scaled unit axes: a query scores exactly its coordinate with each, so many rows
    # tie exactly (whatever the matmul kernel) and the tie-breaking is really exercised.
    axes = torch.eye(8)[torch.randint(0, 8, (40,), generator=g)] * torch.randint(1, 4, (40, 1), generator=g)
    corpus = torch.cat([axes, torch.randn(40, 8, generator=g)])[torch.randperm(80, generator=g)]
    ref_scores, ref_index = reference_top_k(queries, corpus, 10)
    for chunk in (1, 3, 7, 16, 80, 4096):
        scores, index = cosine_top_k(queries, corpus, 10, chunk_size=chunk)
        assert index.tolist() == ref_index, f"chunk_size={chunk}"
        assert torch.allclose(scores, torch.tensor(ref_scores), atol=1e-6)


def test_top_k_edge_cases():
    q, c = torch.randn(2, 4), torch.randn(3, 4)
    scores, index = cosine_top_k(q, c, 10)
    assert index.shape == (2, 3)  # k larger than the corpus: every document, ranked
    assert cosine_top_k(q, torch.empty(0, 4), 5)[1].shape == (2, 0)
    with pytest.raises(ValueError, match="k"):
        cosine_top_k(q, c, 0)
    with pytest.raises(ValueError, match="dimensions"):
        cosine_top_k(q, torch.randn(3, 5), 2)


# -- the index ----------------------------------------------------------------------------------------------

def test_build_query_save_load_round_trip(embedder, model_dir, tmp_path):
    index = SearchIndex.build(CORPUS, embedder, batch_size=3)
    hits = index.query(CORPUS[2], k=3)
    assert isinstance(hits[0], Hit) and len(hits) == 3
    # A text of the corpus is its own nearest neighbour, at cosine 1.
    assert (hits[0].text, hits[0].index) == (CORPUS[2], 2) and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # The hits are the true top 3 by cosine of the model's own vectors.
    vectors = embedder.encode(CORPUS)
    expected = torch.topk(F.normalize(vectors, dim=-1) @ F.normalize(vectors[2], dim=0), 3).indices.tolist()
    assert [h.index for h in hits] == expected

    folder = index.save(tmp_path / "index")
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["model"] == str(model_dir.resolve()) and meta["dim"] == embedder.dim == 32
    assert meta["count"] == len(CORPUS) and re.match(r"\d{4}-\d\d-\d\dT", meta["created"])
    assert np.load(folder / "vectors.npy").shape == (len(CORPUS), 32)

    loaded = SearchIndex.load(folder, embedder)
    assert loaded.texts == CORPUS  # non-ASCII text survives
    assert torch.equal(loaded.vectors, index.vectors)
    several = loaded.query([CORPUS[2], CORPUS[6]], k=3)
    # Batched with another query the vector differs in the last bits (padding), so compare ranks and rounded scores.
    assert [h.index for h in several[0]] == [h.index for h in hits] and several[1][0].text == CORPUS[6]
    assert [h.score for h in several[0]] == pytest.approx([h.score for h in hits], abs=1e-5)
    # Without a model, the index loads the one it was built with.
    assert SearchIndex.load(folder).query(CORPUS[2], k=3) == hits


def test_refuses_an_index_built_with_another_model(embedder, tiny_bert, tmp_path):
    from conftest import _write_tiny_bert

    from embedgui.engine.modeling import load_embedder

    folder = SearchIndex.build(CORPUS, embedder).save(tmp_path / "index")
    other = load_embedder(str(_write_tiny_bert(tmp_path / "other", seed=1)), device="cpu", max_length=64)
    with pytest.raises(SearchIndexError, match="built with .* embeds differently; load it with that model"):
        SearchIndex.load(folder, other)
    assert len(SearchIndex.load(folder, other, check_model=False)) == len(CORPUS)  # explicit opt-out

    # Another dimension is refused before any probing.
    np.save(folder / "vectors.npy", np.load(folder / "vectors.npy")[:, :16])
    with pytest.raises(SearchIndexError, match="16 dimensions.*gives 32"):
        SearchIndex.load(folder, embedder)


def test_identity_follows_the_weights_not_the_path(model_dir, tmp_path):
    from conftest import _write_tiny_bert

    from embedgui.engine.modeling import load_embedder

    original = tmp_path / "model"
    shutil.copytree(model_dir, original)
    folder = SearchIndex.build(CORPUS, load_embedder(str(original), device="cpu")).save(tmp_path / "index")
    # A copy of the same model elsewhere is accepted.
    moved = tmp_path / "moved"
    shutil.copytree(original, moved)
    assert len(SearchIndex.load(folder, load_embedder(str(moved), device="cpu"))) == len(CORPUS)
    # The same path with other weights (a model retrained in place) is refused.
    retrained = load_embedder(str(_write_tiny_bert(tmp_path / "other", seed=2)), device="cpu", max_length=64)
    retrained.save(original)
    with pytest.raises(SearchIndexError, match="the model changed since the index was built"):
        SearchIndex.load(folder, load_embedder(str(original), device="cpu"))


def test_damaged_or_missing_index_is_a_clear_error(embedder, tmp_path):
    with pytest.raises(SearchIndexError, match="not a saved search index"):
        SearchIndex.load(tmp_path, embedder)
    folder = SearchIndex.build(CORPUS, embedder).save(tmp_path / "index")
    (folder / "texts.jsonl").write_text('{"text": "only one"}\n')
    with pytest.raises(SearchIndexError, match="rebuild the index"):
        SearchIndex.load(folder, embedder)
    with pytest.raises(SearchIndexError, match="empty"):
        SearchIndex.build([], embedder)


# -- corpus files -------------------------------------------------------------------------------------------

def test_load_corpus_text_pairs_csv_tsv_jsonl(tmp_path):
    txt = tmp_path / "corpus.txt"
    txt.write_text("first text\n\n  second text  \nfirst text\n")
    assert load_corpus(txt) == ["first text", "second text"]  # blank lines and repeats dropped, order kept

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"anchor": "a", "positive": "P1", "hard_negatives": ["N"]}\n'
                     '{"anchor": "b", "positive": "P2"}\n{"anchor": "c", "positive": "P1"}\n')
    assert load_corpus(pairs) == ["P1", "P2"]  # distinct positives
    assert load_corpus(pairs, column="anchor") == ["a", "b", "c"]

    csv_file = tmp_path / "glossary.csv"
    csv_file.write_text('term,definition\nloss,"what training lowers, a number"\nbatch,rows seen together\n')
    assert load_corpus(csv_file, "definition") == ["what training lowers, a number", "rows seen together"]
    tsv = tmp_path / "glossary.tsv"
    tsv.write_text("term\tdefinition\nloss\ta number, lowered\n")
    assert load_corpus(tsv, "definition") == ["a number, lowered"]
    single = tmp_path / "single.csv"
    single.write_text("text\none\ntwo\n")
    assert load_corpus(single) == ["one", "two"]  # one column: no need to name it


@pytest.mark.parametrize("case, message", [
    ("csv no column", r"glossary\.csv: no column was chosen; choose one of: term, definition\."),
    ("csv wrong column", r"there is no column 'defn'; choose one of: term, definition\."),
    ("jsonl not pairs", r"notpairs\.jsonl:1: no \"positive\".*choose a column from: id, body\."),
    ("txt with column", r"column 'x' was given"),
    ("missing file", r"absent\.txt: file not found"),
    ("empty file", r"empty\.txt: no texts found"),
])
def test_load_corpus_errors(tmp_path, case, message):
    (tmp_path / "glossary.csv").write_text("term,definition\nloss,a number\n")
    (tmp_path / "notpairs.jsonl").write_text('{"id": 1, "body": "text"}\n')
    (tmp_path / "plain.txt").write_text("text\n")
    (tmp_path / "empty.txt").write_text("\n  \n")
    path, column = {
        "csv no column": ("glossary.csv", None), "csv wrong column": ("glossary.csv", "defn"),
        "jsonl not pairs": ("notpairs.jsonl", None), "txt with column": ("plain.txt", "x"),
        "missing file": ("absent.txt", None), "empty file": ("empty.txt", None),
    }[case]
    with pytest.raises(CorpusError, match=message):
        load_corpus(tmp_path / path, column)


# -- command line -------------------------------------------------------------------------------------------

def test_cli_search_end_to_end(model_dir, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "embedgui", "search", "--model-dir", str(model_dir), "--corpus",
                           str(corpus), "--query", CORPUS[1], "--query", CORPUS[4], "--k", "2", "--device", "cpu"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"query: {CORPUS[1]}" and lines[3] == "" and lines[4] == f"query: {CORPUS[4]}"
    hits = [lines[1], lines[2], lines[5], lines[6]]
    assert all(re.fullmatch(r"-?[01]\.\d{4}  .+", h) for h in hits), lines
    assert lines[1] == f"1.0000  {CORPUS[1]}" and lines[5] == f"1.0000  {CORPUS[4]}"  # each finds itself first


def test_cli_search_saves_and_reuses_an_index(model_dir, tmp_path, capsys):
    csv_file = tmp_path / "glossary.csv"
    csv_file.write_text("term,definition\n" + "".join(f"t{i},{text}\n" for i, text in enumerate(CORPUS[:5])))
    index_dir = tmp_path / "index"
    assert main(["search", "--model-dir", str(model_dir), "--corpus", str(csv_file), "--column", "definition",
                 "--query", CORPUS[3], "--k", "1", "--index", str(index_dir), "--device", "cpu"]) == 0
    first = capsys.readouterr().out
    assert first.strip() == f"1.0000  {CORPUS[3]}" and (index_dir / "meta.json").exists()
    # No corpus: the saved index is loaded, and the model it names.
    assert main(["search", "--index", str(index_dir), "--query", CORPUS[3], "--k", "1", "--device", "cpu"]) == 0
    assert capsys.readouterr().out == first


def test_cli_search_user_errors(model_dir, tmp_path, capsys):
    csv_file = tmp_path / "glossary.csv"
    csv_file.write_text("term,definition\nloss,a number\n")
    code = main(["search", "--model-dir", str(model_dir), "--corpus", str(csv_file), "--query", "x",
                 "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "choose one of: term, definition" in err[0]
    assert main(["search", "--model-dir", str(model_dir), "--query", "x"]) == 2
    assert "--corpus" in capsys.readouterr().err
