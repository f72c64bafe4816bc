from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = Path(os.environ.get("EMBEDGUI_TESTDATA", ROOT / ".cache" / "testdata"))

# Tests never reach a model hub: everything comes from a local folder or the packaged MiniLM.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The CPU precision probe caches its verdict per machine; tests keep that cache out of the user's home.
if "EMBEDGUI_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["EMBEDGUI_CACHE_DIR"] = tempfile.mkdtemp(prefix="embedgui-test-cache-")


def testdata_file(package: str, relative: str) -> Path:
    """Path of a file unpacked by scripts/fetch_testdata.sh, or skip the test saying how to get it."""
    path = TESTDATA / package / relative
    if not path.exists():
        pytest.skip(f"{path} is missing: run `bash scripts/fetch_testdata.sh` (Debian package {package}).")
    return path


def config_with(raw: dict, **sections):
    """A Config from a raw dict, with each keyword merged in: a dict updates that section, anything else replaces."""
    from embedgui.engine.config import config_from_dict

    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for key, value in sections.items():
        if isinstance(value, dict):
            raw.setdefault(key, {}).update(value)
        else:
            raw[key] = value
    return config_from_dict(raw)


def _write_tiny_bert(folder: Path, seed: int = 0) -> Path:
    """A random 2-layer BERT with a small word-piece vocabulary, saved as a normal Hugging Face folder."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = sorted(
        {w for w in ("the a an of to in is for and with model data text train loss vector embedding token "
                     "batch learning network neural gradient layer weight query document search score "
                     "term definition glossary word sentence language machine computer memory").split()}
    )
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *[chr(c) for c in range(ord("a"), ord("z") + 1)],
             *[f"##{chr(c)}" for c in range(ord("a"), ord("z") + 1)], *list("0123456789.,;:!?-'\"()")]
    vocab = list(dict.fromkeys(vocab))
    folder.mkdir(parents=True, exist_ok=True)
    # transformers 5 takes the vocabulary itself (a dict), not a vocab.txt path.
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """Folder of a tiny random BERT, built once per test session (no download)."""
    return _write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Each test's outcome on its item (item.rep_call), so a fixture can leave a screenshot when the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
