from __future__ import annotations

import json

import pytest

from embedgui.engine.config import Config, ConfigError, config_from_dict, load_config

# The config format of the command-line trainer embedgui grows from (original README), every field set.
SEED_CONFIG = {
    "model_id": "BAAI/bge-small-en-v1.5",
    "tokenizer_id": None,
    "device": "auto",
    "dtype": "auto",
    "train": {"batch_size": 8, "epochs": 1, "max_length": 128, "grad_accum_steps": 2, "steps_per_epoch": None,
              "grad_checkpointing": False, "num_workers": 0, "pad_to_multiple_of": 8, "temperature": 0.07},
    "optim": {"name": "AdamW", "lr": 2e-5, "weight_decay": 0.01, "warmup_ratio": 0.1},
    "data": {"pairs_path": "tools/data/pairs.jsonl", "stream": False},
    "output": {"save_dir": "outputs", "save_name": "embed-ft", "save_metrics": True},
    "hf": {"trust_remote_code": False, "local_files_only": False, "default_task": None, "loader": "automodel"},
}


def test_seed_config_loads_unchanged(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(SEED_CONFIG))
    c = load_config(path)
    assert c.model_id == "BAAI/bge-small-en-v1.5"
    assert c.train.grad_accum_steps == 2 and c.train.pad_to_multiple_of == 8 and c.train.temperature == 0.07
    assert c.optim.name == "adamw" and c.optim.lr == 2e-5
    assert c.data.pairs_path == "tools/data/pairs.jsonl" and c.hf.loader == "automodel"
    assert c.base_dir == str(tmp_path.resolve())


def test_example_config_is_valid():
    from conftest import ROOT

    c = load_config(ROOT / "assets" / "config.example.json")
    assert c.validate() == []


def test_round_trip(tmp_path):
    c = config_from_dict(SEED_CONFIG)
    c.train.log_every = 3
    c.save(tmp_path / "c.json")
    again = load_config(tmp_path / "c.json")
    assert again.to_dict() == c.to_dict()
    assert "base_dir" not in json.loads((tmp_path / "c.json").read_text())


def test_all_problems_reported_at_once_with_suggestions():
    bad = json.loads(json.dumps(SEED_CONFIG))
    bad["train"]["bach_size"] = 4
    bad["train"]["epochs"] = "two"
    bad["train"]["temperature"] = 0
    bad["optim"]["name"] = "adamx"
    bad["device"] = "tpu"
    bad["modle_id"] = "x"
    with pytest.raises(ConfigError) as info:
        config_from_dict(bad, "my.json")
    errors = info.value.errors
    assert len(errors) == 6, errors
    text = str(info.value)
    assert text.startswith("my.json: 6 problems")
    assert "train.bach_size: unknown key; did you mean 'batch_size'?" in errors
    assert "modle_id: unknown key; did you mean 'model_id'?" in errors
    assert any(e.startswith('train.epochs: "two" is not allowed') for e in errors)
    assert any(e.startswith("train.temperature: 0.0 is not allowed") for e in errors)
    assert any(e.startswith('optim.name: "adamx" is not allowed') and "adamw" in e for e in errors)
    assert any(e.startswith('device: "tpu"') and "auto, cuda, mps, cpu" in e for e in errors)


def test_a_setting_in_the_wrong_section_is_named_where_it_belongs():
    """The original trainer's NaN tip says "temperature 0.07 -> 0.1~0.2" without its section; a user who writes it
    at the top level (or lr under train) is told where it goes, in English and Korean."""
    from embedgui.ui.engine_text import engine_text

    with pytest.raises(ConfigError) as info:
        config_from_dict({"temperature": 0.1, "train": {"lr": 1e-4, "model_id": "x"}}, "my.json")
    errors = info.value.errors
    assert errors == ['temperature: unknown key here; it is train.temperature, so move it into the "train" section.',
                      'train.lr: unknown key here; it is optim.lr, so move it into the "optim" section.',
                      "train.model_id: unknown key here; it is model_id, so move it to the top level."]
    for error in errors:
        korean = engine_text(error, "ko")
        assert korean != error and "옮기세요" in korean


def test_early_stopping_without_evaluations_is_a_config_error_not_a_quiet_full_run():
    """It was a warning in the log once the model had loaded, and the run trained to its end; keep_best, the same
    situation, was already a config error."""
    from embedgui.ui.engine_text import engine_text

    for data, train, says in (({}, {"eval_every": 10}, "needs eval data"),
                              ({"eval_split": 0.1}, {}, "set train.eval_every")):
        with pytest.raises(ConfigError) as info:
            config_from_dict({"data": data, "train": {"early_stopping_patience": 2, **train}})
        (error,) = info.value.errors
        assert error.startswith("train.early_stopping_patience: ") and says in error
        assert engine_text(error, "ko") != error
    config_from_dict({"data": {"eval_split": 0.1}, "train": {"early_stopping_patience": 2, "eval_every": 10}})


def test_an_empty_config_file_is_called_empty(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("\n  \n")
    with pytest.raises(ConfigError, match=r"config.json: the file is empty; write a JSON object"):
        load_config(path)


def test_json_syntax_error_names_line(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{\n  "model_id": "x",\n  "device": auto\n}')
    with pytest.raises(ConfigError, match=r"config.json: line 3 column 13: invalid JSON"):
        load_config(path)


def test_missing_file_and_section_type(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.json")
    with pytest.raises(ConfigError, match=r"train: must be an object"):
        config_from_dict({"train": 5})


def test_comments_and_aliases_accepted():
    c = config_from_dict({"_comment": "hi", "dtype": "bf16", "optim": {"lr": "3e-5", "name": "AdamW"}})
    assert c.dtype == "bfloat16" and c.optim.lr == 3e-5 and c.optim.name == "adamw"


def test_validate_on_edited_config():
    c = Config()
    c.train.batch_size = 0
    c.output.save_name = "a/b"
    c.data.eval_split = 0.2
    c.data.stream = True
    errors = c.validate()
    assert any(e.startswith("train.batch_size: 0 is not allowed") for e in errors)
    assert any(e.startswith("output.save_name") for e in errors)
    assert any(e.startswith("data.eval_split: cannot split a streamed file") for e in errors)


def test_best_metric_and_keep_best_are_checked():
    with pytest.raises(ConfigError) as info:
        config_from_dict({"output": {"best_metric": "ndcg@100", "keep_best": True}})
    assert any(e.startswith('output.best_metric: "ndcg@100" is not allowed') for e in info.value.errors)
    assert any(e.startswith("output.keep_best: needs eval data") for e in info.value.errors)
    ok = config_from_dict({"output": {"best_metric": "NDCG@10", "keep_best": True}, "data": {"eval_split": 0.1}})
    assert ok.output.best_metric == "ndcg@10"


def test_non_utf8_byte_is_one_sentence_with_its_offset(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(b'{\n  "model_id": "caf\xe9"\n}')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: byte 20 (line 2) is 0xe9") and "save the file as UTF-8" in message
    assert "\n" not in message
    path.write_bytes(b'\xef\xbb\xbf{"model_id": "caf\xe9"}')  # after a byte-order mark the offset still counts it
    with pytest.raises(ConfigError, match=r"byte 20 \(line 1\) is 0xe9"):
        load_config(path)


def test_example_config_lists_every_field():
    """assets/config.example.json is the reference users copy: every field of the schema, with its default (as
    docs/config.md says)."""
    from conftest import ROOT

    example = json.loads((ROOT / "assets" / "config.example.json").read_text())

    def keys(d: dict, prefix: str = "") -> set[str]:
        out = set()
        for k, v in d.items():
            if k.startswith("_"):
                continue
            out |= keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k}
        return out

    assert keys(example) == keys(Config().to_dict())
    defaults = Config().to_dict()
    for section, value in example.items():
        if isinstance(value, dict):
            for key, v in value.items():
                assert v == defaults[section][key], f"{section}.{key}: {v} in the example, {defaults[section][key]}"
        elif not section.startswith("_"):
            assert value == defaults[section], section


def test_config_reference_documents_every_field():
    from conftest import ROOT

    doc = (ROOT / "docs" / "config.md").read_text()

    def keys(d: dict, prefix: str = "") -> list[str]:
        out = []
        for k, v in d.items():
            out += keys(v, f"{prefix}{k}.") if isinstance(v, dict) else [prefix + k]
        return out

    assert [k for k in keys(Config().to_dict()) if f"| `{k.split('.')[-1]}` |" not in doc] == []
