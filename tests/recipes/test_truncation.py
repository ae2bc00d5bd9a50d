"""Texts cut to the token limit by the featurizers are counted and logged once per split."""

import logging

import pytest
from recipe_tokenizer import word_tokenizer

from flare_xlt.recipes import METHODS
from flare_xlt.recipes.features import Featurizer
from flare_xlt.recipes.qa import QAFeaturizer
from flare_xlt.recipes.truncation import Truncations, featurize_split
from flare_xlt.tasks import ClassificationExample, QAExample, get_template

TEMPLATE = get_template("nusax_senti")
WORDS = "aku seneng film iki I like this film Sentiment: Context: Question: Answer: kata"


@pytest.fixture(scope="module")
def tokenizer():
    tokenizer = word_tokenizer([WORDS])
    tokenizer.add_special_tokens({"eos_token": "<eos>"})
    return tokenizer


def sentence(i: int, words: int) -> ClassificationExample:
    return ClassificationExample(str(i), "jav", (" ".join(["aku"] * words),), 0, ("I like",))


def test_the_log_counts_the_texts_cut_per_stream(tokenizer, caplog):
    featurize = Featurizer(tokenizer, TEMPLATE, "causal_lm", METHODS["flare"], max_length=10)
    examples = [sentence(0, 3), sentence(1, 30), sentence(2, 40)]
    with caplog.at_level(logging.INFO, logger="flare_xlt"):
        features = featurize_split(featurize, examples, "nusax_senti/jav/train")
        featurize_split(featurize, examples[:1], "nusax_senti/jav/test")  # counted afresh
    assert [len(f["input_ids"]) for f in features] == [5, 10, 10]  # BOS, words, cue
    assert [r.getMessage() for r in caplog.records] == [
        "nusax_senti/jav/train: 2 of 3 input texts cut to 10 tokens, "
        "0 of 3 English texts cut to 10 tokens",
        "nusax_senti/jav/test: 0 of 1 input texts cut to 10 tokens, "
        "0 of 1 English texts cut to 10 tokens",
    ]


def test_input_fusion_is_counted_against_twice_the_limit(tokenizer):
    featurize = Featurizer(tokenizer, TEMPLATE, "causal_lm", METHODS["input_fusion"], 10)
    featurize(sentence(0, 12))  # 12 + BOS + cue + English: within 20
    featurize(sentence(1, 30))
    assert featurize.truncations.summary() == "1 of 2 input texts cut to 20 tokens"


def test_an_encoder_cuts_as_before_and_counts(tokenizer):
    featurize = Featurizer(tokenizer, TEMPLATE, "classifier", METHODS["lora"], max_length=8)
    long, short = sentence(0, 20), sentence(1, 2)
    assert (
        featurize(long)["input_ids"]
        == tokenizer(long.target[0], truncation=True, max_length=8)["input_ids"]
    )
    assert featurize(short)["input_ids"] == tokenizer(short.target[0])["input_ids"]
    assert featurize.truncations.summary() == "1 of 2 input texts cut to 8 tokens"


def test_flare_mt_counts_its_latent_input(tokenizer):
    featurize = Featurizer(
        tokenizer,
        TEMPLATE,
        "causal_lm",
        METHODS["flare_mt"],
        max_length=8,
        latent_tokenizer=tokenizer,
    )
    featurize(sentence(0, 20))
    assert featurize.truncations.summary() == (
        "1 of 1 input texts cut to 8 tokens, 1 of 1 latent texts cut to 8 tokens"
    )


def test_qa_passages_cut_to_the_prompt_budget_are_counted(tokenizer):
    featurize = QAFeaturizer(
        tokenizer, get_template("tydiqa"), "causal_lm", METHODS["flare"], 20, max_answer_tokens=4
    )
    long_context = " ".join(["kata"] * 30) + " aku"
    for context in ("kata aku", long_context):
        example = QAExample("q", "ind", context, "film", ("aku",), (context.index("aku"),))
        example = QAExample(**{**example.__dict__, "source_context": "I", "source_question": "I"})
        featurize(example)
    assert featurize.truncations.summary() == (
        "1 of 2 input texts cut to 15 tokens, 0 of 2 English texts cut to 15 tokens"
    )


def test_an_empty_tally_says_so():
    assert Truncations().summary() == "no texts tokenized"
