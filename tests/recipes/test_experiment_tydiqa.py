"""The runner on TyDiQA-GoldP: stage 1 on the English train file, GoldP dev as the test.

TyDiQA's examples have no English side: methods that need one are refused at config load,
the others run end-to-end on a tiny random Llama (no downloads).
"""

import json

import pytest
import torch
import transformers as tf
from recipe_tokenizer import word_tokenizer
from tiny_models import tiny_config

from flare_xlt.errors import FlareError
from flare_xlt.evaluate import read_results_json
from flare_xlt.paths import default_data_dir
from flare_xlt.recipes import load_config, run_experiment
from flare_xlt.recipes.data import load_examples
from flare_xlt.recipes.stage1 import fingerprint
from flare_xlt.tasks import TaskSpec, get_template

REFUSAL = r"^TyDiQA has no English side; for FLARE on QA use task=xquad \(English pairs\)"
SMALL = [
    "task=tydiqa",
    "languages=[swahili]",
    "data.max_train_examples=6",
    "data.max_validation_examples=3",
    "data.max_test_examples=4",
    "data.max_length=128",
    "stage1.max_steps=1",
    "stage2.max_steps=1",
    "stage1.batch_size=3",
    "stage2.batch_size=3",
]


@pytest.fixture(scope="module")
def data_dir():
    """The shared datasets' directory (the test is skipped without one)."""
    directory = default_data_dir()
    if directory is None:
        pytest.skip("no dataset directory (set FLARE_DATA_DIR)")
    return directory


@pytest.fixture(scope="module")
def tydiqa_backbones(data_dir, tmp_path_factory):
    """A tiny random generative Llama and extractive BERT over TyDiQA words (no downloads)."""
    texts = ["Context: Question: Answer:"] * 50
    for language in ("english", "swahili"):
        path = data_dir / "tydiqa_goldp" / "train" / f"{language}_tydiqa_train.json"
        for article in json.loads(path.read_text())["data"][:20]:
            for paragraph in article["paragraphs"]:
                texts += [paragraph["context"], *(qa["question"] for qa in paragraph["qas"])]
    root = tmp_path_factory.mktemp("tydiqa")
    torch.manual_seed(0)
    tokenizer = word_tokenizer(texts, vocab_size=600)
    tokenizer.add_special_tokens({"eos_token": "<eos>"})
    tokenizer.add_tokens(["\n"])
    llama = tf.LlamaForCausalLM(
        tiny_config(
            "llama", vocab_size=len(tokenizer), bos_token_id=2, eos_token_id=tokenizer.eos_token_id
        )
    )
    llama.save_pretrained(root / "llama")
    tokenizer.save_pretrained(root / "llama")
    encoder_tokenizer = word_tokenizer(texts, padding_side="right", vocab_size=600)
    bert = tf.BertForQuestionAnswering(
        tiny_config(
            "bert", vocab_size=len(encoder_tokenizer), max_position_embeddings=512, num_labels=2
        )
    )
    bert.save_pretrained(root / "bert")
    encoder_tokenizer.save_pretrained(root / "bert")
    return root


@pytest.mark.real_data
@pytest.mark.slow
@pytest.mark.parametrize(
    ("backbone", "methods"),
    [("llama", ["zero_shot", "lora", "flare_mt"]), ("bert", ["zero_shot", "lora"])],
)
def test_tydiqa_grid_trains_stage1_on_english_and_tests_on_goldp(
    tydiqa_backbones, backbone, methods, tmp_path
):
    config = load_config(
        overrides=[
            *SMALL,
            f"backbone={tydiqa_backbones / backbone}",
            f"latent_encoder={tydiqa_backbones / 'bert'}",
            f"output_dir={tmp_path}",
            f"methods=[{', '.join(methods)}]",
        ]
    )
    run_experiment(config, progress=False)
    results = read_results_json(tmp_path / "results.json")
    assert sorted(r.method for r in results) == sorted(methods)
    assert all(r.language == "swahili" and r.n_examples == 4 for r in results)
    assert all(r.metric == "exact_match" for r in results)
    assert all(set(r.extra["scores"]) == {"exact_match", "f1"} for r in results)
    assert all(r.english_side == "none" for r in results)
    assert all(("train_seconds" in r.extra) == (r.method != "zero_shot") for r in results)
    assert "Exact match" in (tmp_path / "results.md").read_text()
    stage1 = json.loads((tmp_path / "stage1" / "stage1.json").read_text())
    english = {s: load_examples(config, "english", s) for s in ("train", "validation")}
    assert all(e.language == "eng" for examples in english.values() for e in examples)
    assert stage1["settings"]["english_data"] == {s: fingerprint(e) for s, e in english.items()}


@pytest.mark.parametrize("method", ["translate_test", "input_fusion", "flare", "x_mixup"])
def test_methods_needing_english_are_refused_at_config_load(method):
    with pytest.raises(FlareError, match=REFUSAL) as refused:
        load_config(overrides=[*SMALL, f"methods=[zero_shot, {method}]"])
    message = str(refused.value)
    assert "\n" not in message
    assert f"drop {method} " in message and "zero_shot, lora, flare_mt" in message


@pytest.mark.real_data
def test_training_on_a_language_without_a_train_file_fails_before_stage1(data_dir, tmp_path):
    config = load_config(
        overrides=[*SMALL, "languages=[arabic]", "methods=[lora]", f"output_dir={tmp_path}"]
    )
    with pytest.raises(FlareError, match=r"arabic_tydiqa_train\.json: .*not found"):
        run_experiment(config, progress=False)
    assert not (tmp_path / "stage1").exists()


def test_a_task_without_english_side_must_name_its_stage1_language():
    with pytest.raises(FlareError, match="no English side: name the language stage 1 trains on"):
        TaskSpec("own_qa", "qa", (), "squad", get_template("tydiqa"), without_english="none")
