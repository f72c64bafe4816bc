"""Property-based tests: whatever bytes a user gives the loaders, they load or raise the project's own error."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedgui.engine.config import ConfigError, config_from_dict, load_config
from embedgui.engine.data import PairsError, read_pairs

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**15), 10**15) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
# keys a user could plausibly write: the real ones (so values reach the validators), near misses, and noise
config_keys = st.sampled_from([
    "model_id", "tokenizer_id", "device", "dtype", "seed", "pooling", "normalize", "train", "optim", "data",
    "output", "hf", "batch_size", "lr", "epochs", "pairs_path", "save_name", "modle_id", "_comment",
]) | st.text(max_size=8)
section_keys = st.sampled_from([
    "batch_size", "epochs", "max_length", "steps_per_epoch", "temperature", "lr", "warmup_ratio", "name",
    "pairs_path", "eval_split", "max_hard_negatives", "save_name", "save_dir", "keep_snapshots", "loader",
])
sections = st.fixed_dictionaries({}, optional={
    s: st.dictionaries(section_keys, json_values, max_size=4) for s in ("train", "optim", "data", "output", "hf")
})
config_dicts = st.one_of(
    st.dictionaries(config_keys, json_values, max_size=6),
    st.builds(lambda a, b: {**a, **b}, sections, st.dictionaries(config_keys, json_values, max_size=3)),
)


@FUZZ
@given(data=config_dicts)
def test_config_from_any_json_object_loads_or_raises_config_error(data):
    try:
        config = config_from_dict(data, "fuzz.json")
    except ConfigError as e:
        assert str(e).startswith("fuzz.json: ") and e.errors
        return
    assert config.validate() == []  # what loads is usable


@FUZZ
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_config_file_with_any_bytes_loads_or_raises_config_error(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("cfg") / "config.json"
    path.write_bytes(raw)
    try:
        load_config(path)
    except ConfigError as e:
        assert str(path) in str(e)


pair_lines = st.one_of(
    st.builds(lambda a, p, n: json.dumps({"anchor": a, "positive": p, "hard_negatives": n}),
              st.text(max_size=10), st.text(max_size=10), st.lists(st.text(max_size=6), max_size=2) | json_values),
    json_values.map(json.dumps),
    st.text(max_size=40),
)


@FUZZ
@given(lines=st.lists(pair_lines, max_size=6), skip=st.booleans(), tail=st.binary(max_size=4))
def test_pairs_file_loads_or_raises_pairs_error(tmp_path_factory, lines, skip, tail):
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass") + tail)
    try:
        pairs, skipped = read_pairs(path, skip_invalid=skip)
    except PairsError as e:
        assert str(path) in str(e)
        return
    assert pairs and all(p.anchor.strip() and p.positive.strip() for p in pairs)
    assert skip or not skipped


table_text = st.lists(
    st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=8) | st.sampled_from(
        ['"', '""', ",", "\t", ";", "|", "\r", "용어", "정의"]), max_size=4).map(lambda cells: ",".join(cells)),
    max_size=6,
).map("\n".join)


@FUZZ
@given(raw=table_text.map(lambda s: s.encode("utf-8")) | table_text.map(lambda s: s.encode("cp949", "ignore"))
       | st.binary(max_size=200), suffix=st.sampled_from([".csv", ".tsv", ".jsonl", ".txt"]))
def test_table_file_loads_or_raises_table_error(tmp_path_factory, raw, suffix):
    from embedgui.engine.tables import TableError, read_table

    path = tmp_path_factory.mktemp("table") / f"input{suffix}"
    path.write_bytes(raw)
    try:
        table = read_table(path)
    except TableError as e:
        assert path.name in str(e)
        return
    assert all(len(row) == len(table.columns) for row in table.rows)
