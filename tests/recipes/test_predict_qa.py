"""QA rows of ``flare predict``: unlabeled rows get the model inputs and answers of gold ones."""

import json

import pytest
import torch
import transformers as tf
from recipe_tokenizer import word_tokenizer
from tiny_models import randomize_lora_b, tiny_config

from flare_xlt import FlareConfig, FlareModel
from flare_xlt.recipes import METHODS
from flare_xlt.recipes.components import build_components
from flare_xlt.recipes.prediction import predict_features
from flare_xlt.recipes.stage2 import MethodSetup
from flare_xlt.tasks import QAExample, get_task_spec
from flare_xlt.tasks.unlabeled_file import load_unlabeled_file

torch.set_num_threads(1)

SPEC = get_task_spec("xquad")
ROWS = [  # target context, question, answer; English context, question
    ("Jakarta adalah ibu kota Indonesia", "apa ibu kota Indonesia", "Jakarta",
     "Jakarta is the capital of Indonesia", "what is the capital of Indonesia"),
    ("gunung Bromo ada di Jawa Timur", "di mana gunung Bromo", "Jawa Timur",
     "mount Bromo is in East Java", "where is mount Bromo"),
    ("Danau Toba ada di Sumatra Utara", "di mana Danau Toba", "Sumatra",
     "lake Toba is in North Sumatra", "where is lake Toba"),
]  # fmt: skip


def gold(i: int) -> QAExample:
    context, question, answer, en_context, en_question = ROWS[i]
    return QAExample(
        str(i + 1), "ind", context, question, (answer,), (context.index(answer),),
        en_context, en_question, (answer,),
    )  # fmt: skip


@pytest.fixture(scope="module")
def tokenizer():
    words = " ".join(" ".join(row) for row in ROWS) + " Context: Question: Answer:"
    tokenizer = word_tokenizer([words], vocab_size=128)
    tokenizer.add_special_tokens({"eos_token": "<eos>"})
    tokenizer.add_tokens(["\n"])
    return tokenizer


@pytest.mark.parametrize("head", ["causal_lm", "classifier"])
def test_unlabeled_qa_rows_are_answered_as_gold_rows_are(tokenizer, tmp_path, head):
    torch.manual_seed(0)
    if head == "causal_lm":
        config = tiny_config("llama", vocab_size=len(tokenizer), eos_token_id=len(tokenizer) - 2)
        base = tf.LlamaForCausalLM(config).eval()
    else:
        config = tiny_config(
            "bert", vocab_size=len(tokenizer), max_position_embeddings=128, num_labels=2
        )
        base = tf.BertForQuestionAnswering(config).eval()
    model = FlareModel.from_base(base, FlareConfig())
    randomize_lora_b(model)
    method = METHODS["flare"]
    parts = build_components(SPEC, tokenizer, SPEC.prompt, head, method, max_length=48)
    setup = MethodSetup(method, model, parts.featurize, parts.scorer, parts.collate, "squad")
    path = tmp_path / "questions.jsonl"
    path.write_text(
        "".join(
            json.dumps({"context": c, "question": q, "source_context": ec, "source_question": eq})
            + "\n"
            for c, q, _, ec, eq in ROWS
        )
    )
    rows = load_unlabeled_file(path, "qa", 2, "ind", english=True)
    unlabeled = [setup.featurize(example) for example in rows.examples]
    labelled = [setup.featurize(gold(i)) for i in range(len(ROWS))]
    model_inputs = ("prompt_ids", "source_input_ids") if head == "causal_lm" else (
        "input_ids", "source_input_ids", "offsets"
    )  # fmt: skip
    for plain, with_gold in zip(unlabeled, labelled, strict=True):
        assert {k: plain[k] for k in model_inputs} == {k: with_gold[k] for k in model_inputs}
    expected = setup.scorer.predict(model, labelled, setup.collate, 2, progress=False)
    assert predict_features(setup, SPEC, unlabeled, 2) == [{"answer": a} for a in expected]
