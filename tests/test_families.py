"""Model families: pooling auto/mean/cls/last, prompts, decoder embedders, LoRA, Matryoshka, run-folder settings.

Tiny random models are built here (no download): a Qwen3-style decoder with a word-level tokenizer and left
padding, and the session's tiny BERT.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import config_with

from embedgui.engine.config import config_from_dict
from embedgui.engine.evaluate import evaluate_model
from embedgui.engine.loss import InfoNCELoss, MatryoshkaLoss, SymmetricInfoNCELoss, info_nce
from embedgui.engine.model_files import ADAPTER_DIR
from embedgui.engine.modeling import ModelLoadError, load_embedder
from embedgui.engine.pooling import appends_eos, is_decoder_only, pool
from embedgui.engine.trainer import Trainer

WORDS = ("the a an of to in is for and with model data text train loss vector embedding token batch learning "
         "network neural gradient layer weight query document search score term definition glossary word "
         "sentence language machine computer memory instruct given retrieve what : ?").split()
QUERY = "Instruct: given a query retrieve a document\nQuery:"


def _tiny_decoder(folder: Path, eos_in_tokenizer: bool = True) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3Model

    vocab = {t: i for i, t in enumerate(["<|endoftext|>", "<unk>", *dict.fromkeys(WORDS), *map(str, range(60))])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    eos = "<|endoftext|>"
    if eos_in_tokenizer:
        tk.post_processor = processors.TemplateProcessing(single=f"$A {eos}", pair=f"$A {eos} $B {eos}",
                                                          special_tokens=[(eos, vocab[eos])])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token=eos, pad_token=eos, unk_token="<unk>",
                                  padding_side="left", model_max_length=64)
    torch.manual_seed(0)
    cfg = Qwen3Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=64,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None)
    Qwen3Model(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory) -> Path:
    return _tiny_decoder(tmp_path_factory.mktemp("tiny-qwen3"))


@pytest.fixture(scope="module")
def tiny_qwen_no_eos(tmp_path_factory) -> Path:
    return _tiny_decoder(tmp_path_factory.mktemp("tiny-qwen3-noeos"), eos_in_tokenizer=False)


def _pairs(path: Path, n: int = 24) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    words = WORDS[:30]
    rows = []
    for i in range(n):
        a = " ".join(words[(i + j) % len(words)] for j in range(3))
        p = " ".join(words[(i * 7 + j) % len(words)] for j in range(5))
        rows.append({"anchor": f"{a} {i}", "positive": f"{p} {i}", "hard_negatives": [f"{p} {i + 1}"]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _config(model: Path, tmp_path: Path, name: str = "run", **sections):
    raw = {
        "model_id": str(model), "device": "cpu", "dtype": "float32", "seed": 3,
        "train": {"batch_size": 8, "epochs": 1, "max_length": 32, "log_every": 1, "steps_per_epoch": 2},
        "optim": {"lr": 1e-3, "warmup_ratio": 0.0},
        "data": {"pairs_path": str(_pairs(tmp_path / "pairs.jsonl"))},
        "output": {"save_dir": str(tmp_path / "runs"), "save_name": name},
    }
    return config_with(raw, **sections)


TEXTS = ["the model", "a vector of the data is a search score", "query"]


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(torch.as_tensor(a).float(), torch.as_tensor(b).float(), dim=-1)


# -- pooling -------------------------------------------------------------------------------------------------

def test_cls_takes_the_first_real_token_under_left_padding():
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    left = torch.tensor([[0, 1, 1], [1, 1, 1]])
    assert pool(hidden, left, "cls").tolist() == [hidden[0, 1].tolist(), hidden[1, 0].tolist()]
    right = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert pool(hidden, right, "cls").tolist() == [hidden[0, 0].tolist(), hidden[1, 0].tolist()]


@pytest.mark.parametrize("side", ["left", "right"])
def test_last_token_equals_the_unpadded_sequence_on_a_decoder(tiny_qwen, side):
    model = load_embedder(str(tiny_qwen), device="cpu")
    assert model.pooling == "last" and model.normalize
    model.tokenizer.padding_side = side
    alone = torch.cat([model.encode([t]) for t in TEXTS])
    together = model.encode(TEXTS)
    assert torch.allclose(alone, together, atol=1e-5)


def test_last_token_pooling_on_an_encoder_under_both_padding_sides(tiny_bert):
    """BERT with last-token pooling: right-padded batches equal each text alone. Left padding shifts BERT's absolute
    position embeddings (in sentence-transformers too), so there the check is on the pooling itself: the state of
    each text's last real token is taken, whichever side the padding is on."""
    from embedgui.engine.pooling import pool

    model = load_embedder(str(tiny_bert), device="cpu", pooling="last")
    model.tokenizer.padding_side = "right"
    assert torch.allclose(torch.cat([model.encode([t]) for t in TEXTS]), model.encode(TEXTS), atol=1e-5)
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).view(2, 4, 3)
    right = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    assert torch.equal(pool(hidden, right, "last"), torch.stack([hidden[0, 1], hidden[1, 3]]))
    assert torch.equal(pool(hidden, left, "last"), torch.stack([hidden[0, 3], hidden[1, 3]]))


def test_auto_pooling_follows_the_model(tiny_qwen_no_eos, tiny_bert):
    decoder = load_embedder(str(tiny_qwen_no_eos), device="cpu")
    assert decoder.pooling == "last" and is_decoder_only(decoder.backbone)
    assert appends_eos(decoder.tokenizer)  # appended because last-token pooling needs it
    assert decoder.tokenizer(["the model"])["input_ids"][0][-1] == decoder.tokenizer.eos_token_id
    encoder = load_embedder(str(tiny_bert), device="cpu")
    assert encoder.pooling == "mean" and not is_decoder_only(encoder.backbone)
    assert load_embedder(str(tiny_qwen_no_eos), device="cpu", pooling="mean").pooling == "mean"  # explicit wins


def test_seed_config_with_mean_still_loads_and_auto_is_the_default():
    assert config_from_dict({"pooling": "mean", "normalize": True}).pooling == "mean"
    config = config_from_dict({})
    assert config.pooling == "auto" and config.normalize is None


# -- saved models reproduce the trainer ----------------------------------------------------------------------

@pytest.mark.parametrize("family,pooling,prompts", [
    ("bert", "mean", {"query_prompt": "query: ", "document_prompt": "passage: "}),
    ("bert-left", "cls", {"query_prompt": "query: "}),
    ("qwen", "auto", {"query_prompt": QUERY, "document_prompt": ""}),
])
def test_saved_model_reproduces_the_trainer_in_sentence_transformers(tiny_bert, tiny_qwen, tmp_path, family,
                                                                     pooling, prompts):
    from sentence_transformers import SentenceTransformer

    base = tiny_qwen if family == "qwen" else tiny_bert
    if family == "bert-left":  # a BERT tokenizer that pads on the left: cls must still take [CLS]
        from transformers import AutoModel, AutoTokenizer

        base = tmp_path / "bert-left"
        AutoModel.from_pretrained(tiny_bert).save_pretrained(base)
        tok = AutoTokenizer.from_pretrained(tiny_bert)
        tok.padding_side = "left"
        tok.save_pretrained(base)
    config = _config(base, tmp_path, pooling=pooling, data=prompts)
    trainer = Trainer(config)
    trainer.fit()
    run = config.run_dir
    ours = trainer._job.model
    expected_pooling = "last" if family == "qwen" else pooling
    assert ours.pooling == expected_pooling
    st = SentenceTransformer(str(run), device="cpu")
    for name in ("query", "document"):
        mine = ours.encode(TEXTS, prompt=name)
        theirs = st.encode(TEXTS, prompt_name=name, convert_to_tensor=True) if name in st.prompts else \
            st.encode(TEXTS, convert_to_tensor=True)
        assert _cos(mine, theirs).min() > 0.999, (family, name)
    # a fresh load of the run folder gives the same vectors with the settings it was trained with
    reloaded = load_embedder(str(run), device="cpu")
    assert reloaded.pooling == expected_pooling and reloaded.prompt("query") == prompts["query_prompt"]
    assert _cos(reloaded.encode(TEXTS, prompt="query"), ours.encode(TEXTS, prompt="query")).min() > 0.9999
    assert st.max_seq_length == ours.max_length


def test_prompts_change_what_the_collator_tokenizes(tiny_bert):
    from transformers import AutoTokenizer

    from embedgui.engine.data import Pair, PairCollator

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    rows = [Pair("the model", "a vector", ["the data"]), Pair("a token", "the text")]
    plain = PairCollator(tok, 32)(rows)
    prompted = PairCollator(tok, 32, query_prompt="query: ", document_prompt="passage: ")(rows)
    assert tok.decode(prompted["anchor"]["input_ids"][0], skip_special_tokens=True).startswith("query")
    assert tok.decode(prompted["candidates"]["input_ids"][2], skip_special_tokens=True).startswith("passage")
    assert torch.equal(plain["candidate_ids"], prompted["candidate_ids"])  # masking ids ignore the prompts


# -- LoRA -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", ["bert", "qwen"])
def test_lora_trains_only_the_adapter_and_the_merged_model_matches(tiny_bert, tiny_qwen, tmp_path, family):
    pytest.importorskip("peft")
    from peft import PeftModel
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    base = tiny_qwen if family == "qwen" else tiny_bert
    before = {k: v.clone() for k, v in AutoModel.from_pretrained(base).state_dict().items()}
    config = _config(base, tmp_path, train={"lora": {"r": 4, "alpha": 8}, "matryoshka_dims": [32, 16]},
                     data={"query_prompt": "query: "})
    trainer = Trainer(config)
    trainer.fit()
    model = trainer._job.model
    assert model.is_lora
    trainable = {n for n, p in model.backbone.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    changed = [n for n, p in model.backbone.named_parameters()
               if "lora_" not in n and not torch.equal(p.detach(), before[n.replace("base_model.model.", "")
                                                                            .replace(".base_layer", "")])]
    assert changed == []  # the base weights never moved
    lora_b = [p for n, p in model.backbone.named_parameters() if "lora_B" in n]
    assert any(p.abs().sum() > 0 for p in lora_b)  # the adapter did (lora_B starts at zero)
    run = config.run_dir
    assert (run / ADAPTER_DIR / "adapter_config.json").is_file() and not (run / "adapter_config.json").exists()
    adapter_vectors = model.encode(TEXTS, prompt="query")
    merged = load_embedder(str(run), device="cpu")
    assert not merged.is_lora
    assert _cos(merged.encode(TEXTS, prompt="query"), adapter_vectors).min() > 0.9999
    st = SentenceTransformer(str(run), device="cpu")
    assert _cos(st.encode(TEXTS, prompt_name="query", convert_to_tensor=True), adapter_vectors).min() > 0.999
    # the adapter alone on the base model gives the same token states as the merged model
    peft_model = PeftModel.from_pretrained(AutoModel.from_pretrained(base), run / ADAPTER_DIR).eval()
    features = merged.tokenize(TEXTS)
    with torch.no_grad():
        a = peft_model(**features).last_hidden_state
        b = merged.backbone(**features).last_hidden_state
    assert torch.allclose(a, b, atol=1e-4)
    saved = json.loads((run / "config_sentence_transformers.json").read_text())
    assert saved["matryoshka_dims"] == [32, 16] and saved["prompts"]["query"] == "query: "


def test_lora_run_resumes_from_its_snapshot(tiny_bert, tmp_path):
    pytest.importorskip("peft")
    import threading

    from embedgui.engine.callbacks import Callback

    class StopAfterFirst(Callback):
        def __init__(self, event):
            self.event = event

        def on_log(self, state, logs):
            self.event.set()

    lora = {"lora": {"r": 4}, "steps_per_epoch": 3}
    full = Trainer(_config(tiny_bert, tmp_path / "a", train=lora))
    full.fit()
    event = threading.Event()
    first = Trainer(_config(tiny_bert, tmp_path / "b", train=lora), callbacks=[StopAfterFirst(event)])
    assert first.fit(event).status == "stopped"
    resumed = Trainer(_config(tiny_bert, tmp_path / "b", train={**lora, "resume": True}))
    result = resumed.fit()
    assert result.status == "finished" and result.step == 3
    want = full._job.model.encode(TEXTS)
    got = resumed._job.model.encode(TEXTS)
    assert torch.allclose(want, got, atol=1e-5)


def test_lora_target_modules_that_do_not_exist_are_named(tiny_bert):
    pytest.importorskip("peft")
    with pytest.raises(ModelLoadError, match="train.lora.target_modules"):
        load_embedder(str(tiny_bert), device="cpu", for_training=True, lora={"target_modules": ["no_such_layer"]})


# -- Matryoshka and the symmetric loss ------------------------------------------------------------------------

def _batch(n: int = 6, d: int = 16):
    torch.manual_seed(1)
    anchors = torch.randn(n, d)
    return {"anchor": anchors, "candidates": torch.cat([anchors + 0.3 * torch.randn(n, d), torch.randn(2, d)]),
            "anchor_ids": torch.arange(n), "positive_ids": torch.arange(n) + 100,
            "candidate_ids": torch.cat([torch.arange(n) + 100, torch.tensor([200, 201])]),
            "candidate_rows": torch.cat([torch.arange(n), torch.tensor([-1, -1])])}


def test_matryoshka_with_only_the_full_size_equals_the_plain_loss():
    def model(x):
        return F.normalize(x, dim=-1)

    batch = _batch()
    plain = InfoNCELoss(0.05)(model, batch)
    full = MatryoshkaLoss(InfoNCELoss(0.05), [16])(model, batch)
    assert torch.allclose(plain.loss, full.loss, atol=1e-5)
    several = MatryoshkaLoss(InfoNCELoss(0.05), [8, 16, 4])(model, batch)
    parts = [info_nce(F.normalize(batch["anchor"][:, :d], dim=-1), F.normalize(batch["candidates"][:, :d], dim=-1),
                      0.05).loss for d in (16, 8, 4)]
    assert torch.allclose(several.loss, sum(parts), atol=1e-4)  # a sum over sizes, each re-normalised
    with pytest.raises(ValueError, match="train.matryoshka_dims"):
        MatryoshkaLoss(InfoNCELoss(0.05), [32])(model, batch)


def test_symmetric_loss_averages_both_directions():
    def model(x):
        return F.normalize(x, dim=-1)

    batch = _batch()
    out = SymmetricInfoNCELoss(0.1)(model, batch)
    a, c = model(batch["anchor"]), model(batch["candidates"])
    forward = info_nce(a, c, 0.1).loss
    backward = info_nce(c[:6], a, 0.1).loss
    assert torch.allclose(out.loss, (forward + backward) / 2, atol=1e-6)


def test_evaluation_at_a_truncated_size(tiny_bert, tmp_path):
    config = _config(tiny_bert, tmp_path, train={"matryoshka_dims": [32, 8]})
    Trainer(config).fit()
    pairs = tmp_path / "pairs.jsonl"
    full = evaluate_model(str(config.run_dir), pairs, device="cpu")
    small = evaluate_model(str(config.run_dir), pairs, device="cpu", dim=8)
    # The full evaluation also reports each trained size; scoring one size alone gives the same numbers.
    assert set(small.metrics) < set(full.metrics)
    assert {k: full.metrics[f"{k}/dim8"] for k in small.metrics} == small.metrics
    with pytest.raises(ValueError, match="dim"):
        evaluate_model(str(config.run_dir), pairs, device="cpu", dim=64)


def test_matryoshka_size_larger_than_the_model_stops_at_set_up(tiny_bert, tmp_path):
    from embedgui.engine.trainer import TrainingError

    with pytest.raises(TrainingError, match="train.matryoshka_dims"):
        Trainer(_config(tiny_bert, tmp_path, train={"matryoshka_dims": [64]})).fit()


# -- run folders, loaders, remote code -------------------------------------------------------------------------

def test_run_folder_loads_with_its_training_settings(tiny_bert, tmp_path, monkeypatch):
    config = _config(tiny_bert, tmp_path, pooling="cls", normalize=False, hf={"default_task": "retrieval"},
                     data={"query_prompt": "query: "})
    Trainer(config).fit()
    seen = {}
    from embedgui.engine import modeling

    original = modeling._set_default_task
    monkeypatch.setattr(modeling, "_set_default_task", lambda m, task: seen.setdefault("task", task) and
                        original(m, task))
    model = load_embedder(str(config.run_dir), device="cpu")
    assert (model.pooling, model.normalize, model.prompt("query")) == ("cls", False, "query: ")
    assert seen["task"] == "retrieval"


def test_sentence_transformer_loader_on_a_local_folder(tiny_bert, tmp_path):
    config = _config(tiny_bert, tmp_path, data={"query_prompt": "query: "})
    trainer = Trainer(config)
    trainer.fit()
    via_st = load_embedder(str(config.run_dir), device="cpu", loader="sentence_transformer")
    assert via_st._st_transformer
    want = trainer._job.model.encode(TEXTS, prompt="query")
    assert _cos(via_st.encode(TEXTS, prompt="query"), want).min() > 0.9999
    # and the loader can train: the ST path keeps gradients
    st_config = _config(config.run_dir, tmp_path / "st", hf={"loader": "sentence_transformer"})
    assert Trainer(st_config).fit().status == "finished"


def _custom_code_model(tiny_bert, folder, marker):
    """A model folder whose config names its own code (auto_map); importing that code writes `marker`."""
    from transformers import AutoModel

    AutoModel.from_pretrained(tiny_bert).save_pretrained(folder)
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["auto_map"] = {"AutoConfig": "custom.CustomConfig", "AutoModel": "custom.CustomModel"}
    cfg["model_type"] = "custom-bert"
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "custom.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "from transformers import BertConfig, BertModel\n"
        "class CustomConfig(BertConfig):\n    model_type = 'custom-bert'\n"
        "class CustomModel(BertModel):\n    config_class = CustomConfig\n")
    return folder


def test_remote_code_never_runs_without_trust_remote_code(tiny_bert, tmp_path):
    folder, marker = tmp_path / "custom", tmp_path / "imported.txt"
    _custom_code_model(tiny_bert, folder, marker)
    (folder / "train_config.json").write_text(json.dumps({"hf": {"trust_remote_code": False}}))
    with pytest.raises(ModelLoadError):
        load_embedder(str(folder), device="cpu")
    with pytest.raises(ModelLoadError):
        load_embedder(str(folder), device="cpu", trust_remote_code=False)
    assert not marker.exists()
    # The marker does record an import: with trust_remote_code the same folder's code runs (and loads).
    model = load_embedder(str(folder), device="cpu", trust_remote_code=True)
    assert marker.read_text() == "ran" and type(model.backbone).__name__ == "CustomModel"


def test_eval_and_search_name_their_own_flag_for_a_model_with_its_own_code(tiny_bert, tmp_path, capsys):
    """The command line has no hf.* fields: eval and search ask for --trust-remote-code, and with it they load and
    run the model (its code runs then, and only then)."""
    from embedgui.__main__ import main

    folder, marker = tmp_path / "custom", tmp_path / "imported.txt"
    _custom_code_model(tiny_bert, folder, marker)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"anchor": f"term {i}", "positive": f"what term {i} means"}) + "\n"
                             for i in range(4)), encoding="utf-8")
    for command in (["eval", "--pairs", str(pairs)], ["search", "--corpus", str(pairs), "--query", "term 1"]):
        argv = [command[0], "--model-dir", str(folder), "--device", "cpu", *command[1:]]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "needs custom code" in err and "pass --trust-remote-code" in err and "hf.trust_remote_code" not in err
        if command[0] == "eval":  # (Python keeps the module imported once it ran: the marker is written once)
            assert not marker.exists()
        assert main([*argv, "--trust-remote-code"]) == 0, capsys.readouterr().err
        assert marker.read_text() == "ran"
        out = capsys.readouterr().out
        assert ("recall@1" in out) if command[0] == "eval" else ("what term 1 means" in out)


# -- config and form ---------------------------------------------------------------------------------------------

def test_new_fields_are_validated_with_the_field_named():
    from embedgui.engine.config import ConfigError

    good = config_from_dict({"train": {"lora": {"r": 4, "target_modules": "all-linear"}, "matryoshka_dims": [8, 4],
                                       "symmetric": True},
                             "data": {"query_prompt": "query: "}})
    assert good.train.lora == {"r": 4, "target_modules": "all-linear"} and good.train.matryoshka_dims == [8, 4]
    with pytest.raises(ConfigError) as info:
        config_from_dict({"train": {"lora": {"rank": 4, "alpha": -1, "dropout": 1.5}, "matryoshka_dims": [64, 0]},
                          "pooling": "lastt"})
    text = str(info.value)
    for part in ("train.lora.rank: unknown key", "train.lora.alpha", "train.lora.dropout",
                 "train.matryoshka_dims", "pooling"):
        assert part in text
    with pytest.raises(ConfigError, match="twice"):
        config_from_dict({"train": {"matryoshka_dims": [8, 8]}})


def test_config_form_round_trips_the_new_fields():
    pytest.importorskip("gradio")
    from embedgui.ui.config_tab import config_to_values, field_specs, values_to_config

    config = config_from_dict({"train": {"lora": {"r": 4}, "matryoshka_dims": [16, 8]},
                               "data": {"query_prompt": "query: "}})
    values = config_to_values(config)
    by_path = dict(zip([s.path for s in field_specs()], values))
    assert by_path["normalize"] == "auto" and by_path["pooling"] == "auto"
    assert json.loads(by_path["train.lora"]) == {"r": 4}
    back, errors = values_to_config(values)
    assert errors == [] and back.normalize is None and back.train.lora == {"r": 4}
    assert back.train.matryoshka_dims == [16, 8] and back.data.query_prompt == "query: "  # the space is kept
    values[[s.path for s in field_specs()].index("train.matryoshka_dims")] = "[16, oops]"
    assert any("train.matryoshka_dims" in e for e in values_to_config(values)[1])
