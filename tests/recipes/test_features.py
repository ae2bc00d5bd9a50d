"""Featurizing examples for every method, padding, and verbalizer scoring on a tiny LLM."""

from types import SimpleNamespace

import pytest
import torch
from recipe_tokenizer import word_tokenizer
from tiny_models import tiny_config

from flare_xlt import FlareConfig, FlareModel
from flare_xlt.errors import FlareError
from flare_xlt.recipes import METHODS
from flare_xlt.recipes.features import Collator, Featurizer, pad, verbalizer_token_ids
from flare_xlt.recipes.scoring import ClassificationScorer
from flare_xlt.tasks import ClassificationExample, get_template
from flare_xlt.training.fit import score

TEMPLATE = get_template("nusax_senti")
TEXTS = [
    "aku seneng banget film iki Sentiment: negative neutral positive",
    "I really like this film good bad",
]


@pytest.fixture(scope="module")
def tokenizer():
    return word_tokenizer(TEXTS)


def example(i=0, target="aku seneng film iki", source="I like this film", label=2):
    return ClassificationExample(str(i), "jav", (target,), label, (source,))


def test_each_method_builds_its_streams(tokenizer):
    expected = {
        "zero_shot": {"input_ids"},
        "translate_test": {"input_ids"},
        "lora": {"input_ids"},
        "input_fusion": {"input_ids"},
        "flare": {"input_ids", "source_input_ids"},
        "flare_mt": {"input_ids", "latent_input_ids"},
    }
    for name, streams in expected.items():
        featurize = Featurizer(tokenizer, TEMPLATE, "causal_lm", METHODS[name], 32, tokenizer)
        feature = featurize(example())
        assert {k for k in feature if k.endswith("input_ids")} == streams, name
        assert feature["labels"] == 2 and feature["cache_key"] == "0"
    decode = tokenizer.decode
    target = Featurizer(tokenizer, TEMPLATE, "causal_lm", METHODS["lora"])(example())
    english = Featurizer(tokenizer, TEMPLATE, "causal_lm", METHODS["translate_test"])(example())
    both = Featurizer(tokenizer, TEMPLATE, "causal_lm", METHODS["input_fusion"])(example())
    assert decode(target["input_ids"]) == "<bos> aku seneng film iki Sentiment:"
    assert decode(english["input_ids"]) == "<bos> I like this film Sentiment:"
    assert decode(both["input_ids"]) == "<bos> I like this film aku seneng film iki Sentiment:"


def test_truncation_keeps_the_answer_cue_and_concat_gets_twice_the_length(tokenizer):
    long = example(target=" ".join(["aku"] * 50), source=" ".join(["I"] * 50))
    lora = Featurizer(tokenizer, TEMPLATE, "causal_lm", METHODS["lora"], max_length=10)(long)
    assert len(lora["input_ids"]) == 10
    assert tokenizer.decode(lora["input_ids"][-1:]) == "Sentiment:"
    assert lora["input_ids"][0] == tokenizer.bos_token_id
    fused = Featurizer(tokenizer, TEMPLATE, "causal_lm", METHODS["input_fusion"], 10)(long)
    assert len(fused["input_ids"]) == 20


def test_missing_english_side_is_a_clear_error(tokenizer):
    no_english = ClassificationExample("7", "jav", ("aku",), 0, None)
    with pytest.raises(FlareError, match="example '7' has no English side"):
        Featurizer(tokenizer, TEMPLATE, "causal_lm", METHODS["flare"])(no_english)


def test_verbalizers_must_differ_in_first_token(tokenizer):
    assert len(set(verbalizer_token_ids(tokenizer, TEMPLATE))) == 3
    same = get_template("nusax_senti").__class__(
        "{text}\nSentiment: ", ("text",), ("good", "good", "bad")
    )
    with pytest.raises(FlareError, match="start with the same token"):
        verbalizer_token_ids(tokenizer, same)


def test_pad_and_collate():
    ids, mask = pad([[5, 6, 7], [8]], pad_id=0, side="left")
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    ids, mask = pad([[5, 6, 7], [8]], pad_id=0, side="right")
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    batch = Collator(0, "left", latent_pad_token_id=9)(
        [
            {"input_ids": [1, 2], "latent_input_ids": [3], "labels": 1, "cache_key": "a"},
            {"input_ids": [4], "latent_input_ids": [5, 6], "labels": 0, "cache_key": "b"},
        ]
    )
    assert batch["latent_input_ids"].tolist() == [[3, 9], [5, 6]]
    assert batch["labels"].tolist() == [1, 0] and batch["cache_keys"] == ["a", "b"]


def test_verbalizer_scoring_and_prediction_on_a_tiny_llm(tokenizer):
    import transformers as tf

    torch.manual_seed(0)
    base = tf.LlamaForCausalLM(tiny_config("llama", vocab_size=len(tokenizer))).eval()
    model = FlareModel.from_base(base, FlareConfig())
    verbalizers = verbalizer_token_ids(tokenizer, TEMPLATE)
    scorer = ClassificationScorer(len(verbalizers), verbalizers)
    featurize = Featurizer(tokenizer, TEMPLATE, "causal_lm", METHODS["flare"])
    features = [featurize(example(i, "aku " * (i + 1), "I " * (3 - i), i % 3)) for i in range(3)]
    collate = Collator(tokenizer.pad_token_id, "left")
    batch = collate(features)
    logits = scorer.logits(model, batch)
    full = base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    torch.testing.assert_close(logits, full[:, -1, verbalizers])  # zero B: the base model
    predictions = scorer.predict(model, features, collate, batch_size=2, progress=False)
    one_by_one = [scorer.logits(model, collate([f])).argmax(-1).item() for f in features]
    assert predictions == one_by_one
    loss = scorer.loss(model, batch)
    assert loss.ndim == 0 and torch.isfinite(loss)


class _FixedClassifier(torch.nn.Module):
    """Predicts class ``input_ids[:, 0]`` (one-hot logits ``[B, 3]``): a stand-in classifier."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Linear(1, 1)  # gives the model a device

    def forward(self, input_ids, attention_mask):
        return SimpleNamespace(logits=torch.nn.functional.one_hot(input_ids[:, 0], 3).float())


def test_macro_f1_averages_over_every_class_even_one_never_seen():
    """Class 2 is neither gold nor predicted: it still counts, with F1 0."""
    gold, predicted = [0, 0, 1, 1], [0, 0, 1, 0]
    features = [
        {"input_ids": [p], "labels": g, "cache_key": str(i)}
        for i, (g, p) in enumerate(zip(gold, predicted, strict=True))
    ]
    scorer = ClassificationScorer(num_classes=3)
    value, _, _ = score(
        _FixedClassifier(), features, scorer, Collator(0), "macro_f1", 2, progress=False
    )
    assert value == pytest.approx(100 * (4 / 5 + 2 / 3 + 0) / 3)
    accuracy, _, _ = score(
        _FixedClassifier(), features, scorer, Collator(0), "accuracy", 2, progress=False
    )
    assert accuracy == 75.0
