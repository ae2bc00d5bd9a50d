"""The runner on QA: XQuAD pairs with a tiny generative LLM and a tiny extractive BERT."""

import json

import pytest
import torch
import transformers as tf
from recipe_tokenizer import word_tokenizer
from tiny_models import tiny_config

from flare_xlt.evaluate import read_results_json
from flare_xlt.paths import default_data_dir
from flare_xlt.recipes import load_config, run_experiment

pytestmark = [pytest.mark.real_data, pytest.mark.slow]


@pytest.fixture(scope="module")
def qa_backbones(tmp_path_factory):
    data_dir = default_data_dir()
    if data_dir is None:
        pytest.skip("no dataset directory (set FLARE_DATA_DIR)")
    texts = []
    for language in ("en", "de"):
        document = json.loads((data_dir / "xquad" / f"xquad.{language}.json").read_text())
        for article in document["data"][:3]:
            for paragraph in article["paragraphs"]:
                texts.append(paragraph["context"])
                texts += [qa["question"] for qa in paragraph["qas"]]
    texts += ["Context: Question: Answer:"] * 50
    root = tmp_path_factory.mktemp("qa")
    torch.manual_seed(0)
    decoder_tokenizer = word_tokenizer(texts, vocab_size=600)
    decoder_tokenizer.add_special_tokens({"eos_token": "<eos>"})
    decoder_tokenizer.add_tokens(["\n"])
    llama = tf.LlamaForCausalLM(
        tiny_config(
            "llama",
            vocab_size=len(decoder_tokenizer),
            bos_token_id=2,
            eos_token_id=decoder_tokenizer.eos_token_id,
        )
    )
    llama.save_pretrained(root / "llama")
    decoder_tokenizer.save_pretrained(root / "llama")
    encoder_tokenizer = word_tokenizer(texts, padding_side="right", vocab_size=600)
    bert = tf.BertForQuestionAnswering(
        tiny_config(
            "bert",
            vocab_size=len(encoder_tokenizer),
            max_position_embeddings=512,
            num_labels=2,
        )
    )
    bert.save_pretrained(root / "bert")
    encoder_tokenizer.save_pretrained(root / "bert")
    mt5 = tiny_mt5(len(decoder_tokenizer), decoder_tokenizer.eos_token_id)
    mt5.save_pretrained(root / "mt5")
    decoder_tokenizer.padding_side = "right"  # an encoder reads the prompt
    decoder_tokenizer.save_pretrained(root / "mt5")
    return root


def tiny_mt5(vocab_size: int, eos_token_id: int) -> tf.MT5ForConditionalGeneration:
    """A tiny random mT5 (encoder-decoder) with the given vocabulary."""
    torch.manual_seed(0)
    config = tf.MT5Config(
        vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
        num_heads=4, pad_token_id=0, eos_token_id=eos_token_id, decoder_start_token_id=0,
    )  # fmt: skip
    return tf.MT5ForConditionalGeneration(config)


@pytest.mark.parametrize("backbone", ["llama", "bert", "mt5"])
def test_xquad_runs_every_method(qa_backbones, backbone, tmp_path):
    methods = ["zero_shot", "translate_test", "lora", "input_fusion", "flare", "flare_mt"]
    config = load_config(
        overrides=[
            "task=xquad",
            f"backbone={qa_backbones / backbone}",
            f"latent_encoder={qa_backbones / 'bert'}",
            f"output_dir={tmp_path}",
            f"methods=[{', '.join(methods)}]",
            "languages=[de]",
            "data.max_train_examples=8",
            "data.max_validation_examples=4",
            "data.max_test_examples=6",
            "data.max_length=160",
            "stage1.max_steps=2",
            "stage2.max_steps=2",
            "stage1.batch_size=4",
            "stage2.batch_size=4",
        ]
    )
    run_experiment(config, progress=False)
    results = read_results_json(tmp_path / "results.json")
    assert {r.method for r in results} == set(methods)
    assert all(r.metric == "exact_match" and r.n_examples == 6 for r in results)
    assert all(set(r.extra["scores"]) == {"exact_match", "f1"} for r in results)
    assert "Exact match" in (tmp_path / "results.md").read_text()
    stage1 = json.loads((tmp_path / "stage1" / "stage1.json").read_text())
    assert list(stage1["english_validation"]) == ["exact_match"]  # the number it records
