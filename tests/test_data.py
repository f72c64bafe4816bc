from __future__ import annotations

import itertools
import json
import tracemalloc

import pytest

from embedgui.engine.data import (
    EndlessBatchSampler,
    Pair,
    PairCollator,
    PairsError,
    StreamedBatches,
    batches_per_pass,
    count_pairs,
    find_pairs_path,
    make_loader,
    read_pairs,
    split_pairs,
    write_pairs,
)


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"anchor": "a", "positive": ', "invalid JSON"),
        ('{"positive": "p"}', '"anchor" is missing'),
        ('{"anchor": "a", "positive": "  "}', '"positive" is empty'),
        ('{"anchor": 3, "positive": "p"}', '"anchor" is not text'),
        ('{"anchor": "a", "positive": "p", "hard_negatives": "n"}', '"hard_negatives" must be a list of strings'),
        ('{"anchor": "a", "positive": "p", "hard_negatives": ["n", 1]}', '"hard_negatives" must be a list'),
        ('["a", "p"]', "expected an object"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path, line, problem):
    path = write_lines(tmp_path / "pairs.jsonl", ['{"anchor": "a", "positive": "p"}', "", line])
    with pytest.raises(PairsError) as info:
        read_pairs(path)
    message = str(info.value)
    assert message.startswith(f"{path}:3: ") and problem in message and "data.skip_invalid" in message


def test_skip_invalid_counts_skipped_lines(tmp_path):
    path = write_lines(tmp_path / "pairs.jsonl", [
        '{"anchor": "a", "positive": "p", "hard_negatives": ["n1", "n2"]}',
        "not json",
        '{"anchor": "b", "positive": ""}',
        '{"anchor": "c", "positive": "q"}',
    ])
    pairs, skipped = read_pairs(path, skip_invalid=True)
    assert [p.anchor for p in pairs] == ["a", "c"] and pairs[0].hard_negatives == ["n1", "n2"]
    assert len(skipped) == 2 and skipped[0].startswith(f"{path}:2:") and skipped[1].startswith(f"{path}:3:")
    assert count_pairs(path, skip_invalid=True) == (2, skipped)


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(PairsError, match="no valid rows"):
        read_pairs(write_lines(tmp_path / "e.jsonl", [""]))
    with pytest.raises(PairsError, match="file not found"):
        read_pairs(tmp_path / "missing.jsonl")


def test_the_files_a_user_mistakes_for_pairs_get_what_to_do(tmp_path):
    """A spreadsheet named as data.pairs_path was told "invalid JSON ... or set data.skip_invalid", which skips every
    line; a CP949 file (Korean Excel, Windows) was not told which line, nor that compose reads CP949; a one-anchor
    file with a split named neither the field nor the file. Each now says what to do, in English and Korean."""
    from embedgui.engine.config import Config
    from embedgui.engine.train_data import load_training_data
    from embedgui.ui.engine_text import engine_text

    table = write_lines(tmp_path / "glossary.csv", ["term,definition", "epoch,one pass over the data"])
    renamed = write_lines(tmp_path / "glossary.jsonl", ["term\tdefinition", "epoch\tone pass over the data"])
    for path, kind in ((table, "CSV"), (renamed, "TSV")):
        for skip in (False, True):
            with pytest.raises(PairsError) as info:
                read_pairs(path, skip_invalid=skip)
            assert str(info.value).startswith(f"{path}: this is a {kind} table, not a pairs.jsonl file")
            assert f"python -m embedgui compose --input {path} --output pairs.jsonl" in str(info.value)
            assert engine_text(str(info.value), "ko") != str(info.value)
    cp949 = tmp_path / "ko.jsonl"
    rows = [json.dumps({"anchor": f"용어 {i}", "positive": f"설명 {i}"}, ensure_ascii=False) for i in range(900)]
    cp949.write_bytes("\n".join(rows[:700]).encode("utf-8") + b"\n" + "\n".join(rows[700:]).encode("cp949"))
    with pytest.raises(PairsError) as info:
        read_pairs(cp949)
    message = str(info.value)
    assert message.startswith(f"{cp949}:701: not UTF-8 text") and "CP949" in message and "compose" in message
    assert "CP949" in engine_text(message, "ko") and engine_text(message, "ko") != message
    one = write_lines(tmp_path / "one.jsonl", ['{"anchor": "a", "positive": "p"}', '{"anchor": "a", "positive": "q"}'])
    config = Config()
    config.data.pairs_path, config.data.eval_split = str(one), 0.1
    with pytest.raises(PairsError) as info:
        load_training_data(config)
    assert str(info.value) == (f"data.eval_split 0.1: {one} has 1 distinct anchor(s), and a split needs at least 2; "
                               "set data.eval_split to 0, or add rows.")
    assert engine_text(str(info.value), "ko").startswith("data.eval_split 0.1: ")
    assert "0으로" in engine_text(str(info.value), "ko")


def test_default_locations_and_error_says_where(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config_dir = tmp_path / "cfg"
    config_dir.mkdir()
    with pytest.raises(PairsError) as info:
        find_pairs_path(None, str(config_dir))
    assert str(config_dir / "tools/data/pairs.jsonl") in str(info.value)
    assert str(tmp_path / "data/pairs.jsonl") in str(info.value)
    (tmp_path / "data").mkdir()
    write_lines(tmp_path / "data" / "pairs.jsonl", ['{"anchor": "a", "positive": "p"}'])
    assert find_pairs_path(None, str(config_dir)) == tmp_path / "data" / "pairs.jsonl"
    (config_dir / "tools" / "data").mkdir(parents=True)
    write_lines(config_dir / "tools/data/pairs.jsonl", ['{"anchor": "a", "positive": "p"}'])
    assert find_pairs_path(None, str(config_dir)) == config_dir / "tools/data/pairs.jsonl"
    # an explicit relative path is taken next to the config file first
    assert find_pairs_path("tools/data/pairs.jsonl", str(config_dir)) == config_dir / "tools/data/pairs.jsonl"


def test_endless_sampler_is_deterministic_and_resumable():
    full = list(itertools.islice(iter(EndlessBatchSampler(10, 4, seed=7)), 9))
    assert batches_per_pass(10, 4) == 3
    # every pass covers every row exactly once, and passes are shuffled differently
    for p in range(3):
        assert sorted(i for b in full[3 * p : 3 * p + 3] for i in b) == list(range(10))
    assert full[0:3] != full[3:6]
    resumed = list(itertools.islice(iter(EndlessBatchSampler(10, 4, seed=7, start_batch=4)), 5))
    assert resumed == full[4:9]


def test_single_row_remainder_is_dropped():
    assert batches_per_pass(9, 4) == 2 and batches_per_pass(10, 4) == 3 and batches_per_pass(1, 4) == 1


def test_streamed_batches_match_count_and_resume(tmp_path):
    path = write_lines(tmp_path / "p.jsonl", [json.dumps({"anchor": f"a{i}", "positive": f"p{i}"})
                                              for i in range(23)])
    stream = StreamedBatches(path, 5, seed=1, shuffle_buffer=8)
    first = list(itertools.islice(iter(stream), 10))
    assert [len(b) for b in first[:5]] == [5, 5, 5, 5, 3] == [len(b) for b in first[5:]]
    assert sorted(p.anchor for b in first[:5] for p in b) == sorted(f"a{i}" for i in range(23))
    assert batches_per_pass(23, 5) == 5
    resumed = list(itertools.islice(iter(StreamedBatches(path, 5, seed=1, shuffle_buffer=8, start_batch=3)), 7))
    assert [[p.anchor for p in b] for b in resumed] == [[p.anchor for p in b] for b in first[3:10]]


def test_streaming_memory_stays_flat_on_a_large_file(tmp_path):
    path = tmp_path / "big.jsonl"
    filler = "x" * 400
    with path.open("w", encoding="utf-8") as f:
        for i in range(60_000):  # ~28 MB of rows
            f.write(json.dumps({"anchor": f"term {i}", "positive": f"definition {i} {filler}",
                                "hard_negatives": [f"neg {i}"]}) + "\n")
    size = path.stat().st_size
    tracemalloc.start()
    n, _ = count_pairs(path)
    count_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    stream = StreamedBatches(path, 32, seed=0, shuffle_buffer=1000)
    seen = sum(len(b) for b in itertools.islice(iter(stream), 1500))  # 48k rows read through the buffer
    stream_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == 60_000 and seen == 48_000
    # The buffer holds 1000 rows (~0.6 MB); a file read into memory would take ~2x its size.
    assert count_peak < 2_000_000, count_peak
    assert stream_peak < 5_000_000 and stream_peak < size / 5, (stream_peak, size)


def test_split_is_by_anchor_and_deterministic():
    pairs = [Pair(f"a{i % 20}", f"p{i}") for i in range(60)]
    train, held = split_pairs(pairs, 0.25, seed=3)
    assert {p.anchor for p in train}.isdisjoint({p.anchor for p in held})
    assert len({p.anchor for p in held}) == 5 and len(train) + len(held) == 60
    assert split_pairs(pairs, 0.25, seed=3) == (train, held)
    assert split_pairs(pairs, 0.25, seed=4) != (train, held)


def test_collator_padding_ids_and_hard_negatives(tiny_bert):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    rows = [Pair("the model", "a vector", ["the data", "a vector"]), Pair("loss", "A  Vector"),
            Pair("The Model", "word embedding", [])]
    batch = PairCollator(tok, max_length=16, pad_to_multiple_of=8, max_hard_negatives=1)(rows)
    assert batch["anchor"]["input_ids"].shape[1] % 8 == 0
    assert batch["candidates"]["input_ids"].shape[0] == 4  # 3 positives + 1 negative (capped at 1 per row)
    assert batch["candidate_rows"].tolist() == [0, 1, 2, -1]
    pos = batch["positive_ids"].tolist()
    assert pos[0] == pos[1] != pos[2]  # texts equal under fold() (case, spacing) share an id
    assert batch["anchor_ids"][0] == batch["anchor_ids"][2]


def test_one_pair_type_written_and_read_back(tmp_path):
    rows = [Pair("임베딩", "벡터 표현", ["토큰"], line=7), Pair("loss", "a number")]
    assert rows[0] == Pair("임베딩", "벡터 표현", ["토큰"])  # the source line is not part of a pair's identity
    assert rows[1].to_json() == {"anchor": "loss", "positive": "a number", "hard_negatives": []}
    path = tmp_path / "sub" / "pairs.jsonl"
    write_pairs(path, iter(rows))
    assert path.read_bytes().decode("utf-8").count("\n") == 2 and "\\u" not in path.read_text(encoding="utf-8")
    assert read_pairs(path) == (rows, [])
    assert not list(path.parent.glob("*.tmp"))


# -- length-grouped batches and the token cache (H9) ---------------------------------------------------------------
def padded_share(batches, lengths):
    real = sum(lengths[i] for b in batches for i in b)
    return real / sum(max(lengths[i] for i in b) * len(b) for b in batches)


def test_length_grouped_sampler_is_deterministic_resumable_and_pads_less():
    lengths = [((i * 37) % 61) + 1 for i in range(203)]
    make = lambda **kw: EndlessBatchSampler(203, 8, seed=5, lengths=lengths, window=4, **kw)  # noqa: E731
    per_pass = batches_per_pass(203, 8)
    full = list(itertools.islice(iter(make()), 3 * per_pass))
    assert full == list(itertools.islice(iter(make()), 3 * per_pass))
    for p in range(3):  # every pass still covers every row exactly once, with the usual batch count
        assert sorted(i for b in full[p * per_pass : (p + 1) * per_pass] for i in b) == list(range(203))
    assert full[:per_pass] != full[per_pass : 2 * per_pass]
    assert list(itertools.islice(iter(make(start_batch=30)), 20)) == full[30:50]
    plain = list(itertools.islice(iter(EndlessBatchSampler(203, 8, seed=5)), 3 * per_pass))
    assert padded_share(full, lengths) > padded_share(plain, lengths) + 0.2
    # content stays random: batches are not runs of consecutive rows, and the batch order is not by length
    firsts = [max(lengths[i] for i in b) for b in full[:per_pass]]
    assert firsts != sorted(firsts) and firsts != sorted(firsts, reverse=True)


def topic_purity(batches: list[list[int]]) -> float:
    """Share of the rows of each batch (given as their topics) that belong to the batch's most common topic."""
    return sum(max(b.count(t) for t in b) for b in batches) / sum(len(b) for b in batches)


def test_similar_batches_group_rows_that_share_rare_words_and_stay_resumable():
    from array import array

    # 4 topics; each row has its topic's token (weight 1) and a token of its own (weight 0.5).
    terms = [(array("i", [r % 4, 100 + r]), array("f", [1.0, 0.5])) for r in range(203)]
    make = lambda **kw: EndlessBatchSampler(203, 8, seed=5, terms=terms, window=8, **kw)  # noqa: E731
    per_pass = batches_per_pass(203, 8)
    full = list(itertools.islice(iter(make()), 3 * per_pass))
    assert full == list(itertools.islice(iter(make()), 3 * per_pass))
    for p in range(3):  # every pass covers every row exactly once, with the usual batch count
        assert sorted(i for b in full[p * per_pass : (p + 1) * per_pass] for i in b) == list(range(203))
    assert full[:per_pass] != full[per_pass : 2 * per_pass]
    assert list(itertools.islice(iter(make(start_batch=30)), 20)) == full[30:50]
    plain = list(itertools.islice(iter(EndlessBatchSampler(203, 8, seed=5)), 3 * per_pass))
    similar = topic_purity([[i % 4 for i in b] for b in full])
    random_ = topic_purity([[i % 4 for i in b] for b in plain])
    # A window of 64 rows holds about 16 rows of each topic: most batches are one topic; random ones are not.
    assert similar > 0.8 and random_ < 0.5, (similar, random_)

    # With lengths too: batches of similar rows within bands of similar length, so less padding, still topical.
    lengths = [((i * 37) % 61) + 1 for i in range(203)]
    both = list(itertools.islice(iter(make(lengths=lengths)), 3 * per_pass))
    for p in range(3):
        assert sorted(i for b in both[p * per_pass : (p + 1) * per_pass] for i in b) == list(range(203))
    assert list(itertools.islice(iter(make(lengths=lengths, start_batch=30)), 20)) == both[30:50]
    assert padded_share(both, lengths) > padded_share(full, lengths) + 0.1
    assert topic_purity([[i % 4 for i in b] for b in both]) > random_ + 0.1


def test_similar_batches_through_the_loader_on_real_tokens(tiny_bert):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    topics = ["glossary", "network", "gradient", "machine"]
    filler = "the a an of to in is for and with data text".split()
    rows = [Pair(f"{topics[i % 4]} {filler[i % 12]} {filler[(i * 5) % 12]}",
                 f"{filler[(i * 7) % 12]} {topics[i % 4]} {filler[(i * 3) % 12]} {i}") for i in range(96)]
    topic_ids = {tok.convert_tokens_to_ids(t): k for k, t in enumerate(topics)}

    def purity(similar: bool) -> float:
        loader = make_loader(rows, PairCollator(tok, 32), batch_size=8, seed=2, similar_batches=similar)
        batches = [b["anchor"]["input_ids"].tolist() for b in itertools.islice(iter(loader), 24)]
        return topic_purity([[next(topic_ids[t] for t in ids if t in topic_ids) for ids in b] for b in batches])

    assert purity(True) > 0.8 and purity(False) < 0.6


def test_token_cache_gives_what_the_tokenizer_gives(tiny_bert):
    from transformers import AutoTokenizer

    rows = [Pair("the model", "a vector of data", ["the data", "a vector"]), Pair("loss", "A  Vector"),
            Pair("The Model of text", "the data text train loss vector embedding token batch", [])] * 2
    for side in ("right", "left"):
        for multiple, longest in ((None, 6), (4, 8)):
            tok = AutoTokenizer.from_pretrained(tiny_bert)
            tok.padding_side = side
            plain = PairCollator(tok, max_length=longest, pad_to_multiple_of=multiple)
            cached = PairCollator(tok, max_length=longest, pad_to_multiple_of=multiple)
            cached.enable_token_cache()
            for _ in range(2):  # the second time from the cache
                a, b = plain(rows), cached(rows)
                for key in ("anchor", "candidates"):
                    assert list(a[key]) == list(b[key])
                    for name in a[key]:
                        assert a[key][name].equal(b[key][name]), (side, multiple, key, name)


def test_each_text_is_tokenised_once_across_epochs(tiny_bert, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    seen = []

    class Counting:
        def __getattr__(self, name):
            return getattr(tok, name)

        def __call__(self, texts, **kw):
            seen.extend(texts)
            return tok(texts, **kw)

    rows = [Pair(f"term {i}", f"definition {i} " + "word " * (i % 9)) for i in range(30)]
    loader = make_loader(rows, PairCollator(Counting(), 32), batch_size=4, seed=0, group_by_length=True)
    for _ in itertools.islice(iter(loader), 3 * batches_per_pass(30, 4)):  # three epochs
        pass
    assert len(seen) == len(set(seen)) == 60
    # a streamed file is tokenised batch by batch (memory stays flat): nothing is cached
    path = write_pairs(tmp_path / "p.jsonl", rows) or tmp_path / "p.jsonl"
    collator = PairCollator(tok, 32)
    next(iter(make_loader(path, collator, batch_size=4, seed=0, group_by_length=True)))
    assert collator.token_cache is None


def test_an_unfinished_line_is_reported_at_its_own_column(tmp_path):
    """Was: "at column 1" (the parser saw the line's newline and reported line 2 of the text, column 1)."""
    line = '{"anchor": "broken", '
    path = write_lines(tmp_path / "pairs.jsonl", ['{"anchor": "a", "positive": "p"}', line])
    with pytest.raises(PairsError) as info:
        read_pairs(path)
    assert f"{path}:2: invalid JSON (" in str(info.value) and f"at column {len(line) + 1})" in str(info.value)
