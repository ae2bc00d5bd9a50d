"""load_backbone on tiny local directories, task errors and unreachable hub ids."""

from __future__ import annotations

import shutil
import time

import pytest
import torch
import transformers as tf
from conftest import word_level_tokenizer, write_e5s1, write_tokenizer_json

from flare_xlt.errors import FlareError, ModelUnavailableError
from flare_xlt.models import TASKS, load_backbone, read_e5s1
from flare_xlt.models.convert import e5_to_bert, e5_tokenizer

WORDS = ["hello", "world", "ibu", "kota"]


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    """A tiny Llama causal LM whose tokenizer has EOS but no pad token."""
    path = tmp_path_factory.mktemp("tiny-llama")
    config = tf.LlamaConfig(
        vocab_size=8, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, eos_token_id=1, bos_token_id=None,
    )  # fmt: skip
    torch.manual_seed(0)
    tf.LlamaForCausalLM(config).save_pretrained(path)
    word_level_tokenizer(WORDS, unk_token="<unk>", eos_token="</s>").save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def e5_dir(tmp_path_factory):
    """A tiny pooler-less BertModel converted from a synthetic E5S1 file, as saved by convert_e5."""
    path = tmp_path_factory.mktemp("tiny-e5")
    synthetic = write_e5s1(path / "tiny.bin")
    e5_to_bert(read_e5s1(synthetic.path)).save_pretrained(path)
    tokenizer_json = write_tokenizer_json(path / "source-tokenizer.json", synthetic.scores)
    e5_tokenizer(tokenizer_json).save_pretrained(path)
    return path


def test_unknown_task_lists_valid_ones():
    with pytest.raises(FlareError, match="unknown task 'translation'") as info:
        load_backbone("gemma-3-270m", task="translation")
    assert all(task in str(info.value) for task in TASKS)


def test_num_labels_only_for_classification():
    with pytest.raises(FlareError, match="num_labels"):
        load_backbone("gemma-3-270m", task="causal_lm", num_labels=3)


def test_decoder_pads_left_and_gets_a_pad_token(llama_dir):
    model, tokenizer = load_backbone(str(llama_dir), task="causal_lm")
    assert isinstance(model, tf.LlamaForCausalLM)
    assert tokenizer.padding_side == "left"
    assert tokenizer.pad_token == "</s>"
    assert model.config.pad_token_id == tokenizer.pad_token_id == 1
    batch = tokenizer(["hello world kota", "ibu"], padding=True, return_tensors="pt")
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert model(**batch).logits.shape == (2, 3, 8)


def test_decoder_classification_and_dtype(llama_dir):
    model, _ = load_backbone(
        str(llama_dir), task="sequence_classification", num_labels=3, dtype=torch.bfloat16
    )
    assert isinstance(model, tf.LlamaForSequenceClassification)
    assert model.score.out_features == 3
    assert model.dtype == torch.bfloat16


def test_encoder_tasks_pad_right(e5_dir):
    model, tokenizer = load_backbone(str(e5_dir), task="encoder")
    assert isinstance(model, tf.BertModel)
    assert tokenizer.padding_side == "right"
    assert tokenizer.pad_token_id == model.config.pad_token_id == 1
    classifier, _ = load_backbone(str(e5_dir), task="sequence_classification", num_labels=3)
    assert isinstance(classifier, tf.BertForSequenceClassification)
    assert classifier.classifier.out_features == 3
    torch.testing.assert_close(
        classifier.bert.embeddings.word_embeddings.weight, model.embeddings.word_embeddings.weight
    )
    qa, _ = load_backbone(str(e5_dir), task="question_answering")
    assert isinstance(qa, tf.BertForQuestionAnswering)


def test_causal_lm_on_an_encoder_is_refused(e5_dir):
    with pytest.raises(FlareError, match="not a decoder-only model"):
        load_backbone(str(e5_dir), task="causal_lm")


def test_missing_head_is_a_flare_error(tmp_path):
    config = tf.Gemma3TextConfig(
        vocab_size=8, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, head_dim=8,
    )  # fmt: skip
    tf.Gemma3ForCausalLM(config).save_pretrained(tmp_path)
    word_level_tokenizer(WORDS, unk_token="<unk>", pad_token="<pad>").save_pretrained(tmp_path)
    with pytest.raises(FlareError, match="no question_answering model"):
        load_backbone(str(tmp_path), task="question_answering")


def test_encoder_decoder_encoder_task_returns_the_encoder(tmp_path):
    config = tf.M2M100Config(
        vocab_size=8, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, pad_token_id=0,
    )  # fmt: skip
    tf.M2M100ForConditionalGeneration(config).save_pretrained(tmp_path)
    word_level_tokenizer(WORDS, pad_token="<pad>", unk_token="<unk>").save_pretrained(tmp_path)
    encoder, tokenizer = load_backbone(str(tmp_path), task="encoder")
    assert type(encoder).__name__ == "M2M100Encoder"
    assert tokenizer.padding_side == "right"
    ids = tokenizer(["hello world"], return_tensors="pt")["input_ids"]
    assert encoder(input_ids=ids).last_hidden_state.shape == (1, 2, 16)


def test_unreachable_hub_id_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(ModelUnavailableError) as info:
        load_backbone("nonexistent-org/nonexistent-model-xyz", task="encoder")
    message = str(info.value)
    assert time.monotonic() - start < 10
    assert "\n" not in message
    assert "could not load Hugging Face model id" in message and "HF_HUB_OFFLINE" in message
    assert "'nonexistent-org/nonexistent-model-xyz'" in message
    assert "gemma-3-270m" in message and "multilingual-e5-small" in message
    assert info.value.__suppress_context__


@pytest.mark.parametrize(
    "path", ["./no-such-dir", "/no/such/dir", "~/no-such-flare-model", "runs/stage1/model"]
)
def test_missing_local_directory(path):
    # runs/stage1/model used to end in the hub's "Repo id must be in the form ..."
    with pytest.raises(ModelUnavailableError, match=r"model directory .* not found"):
        load_backbone(path)


def test_a_file_is_not_a_model_directory(tmp_path):
    (tmp_path / "weights.bin").write_text("")
    with pytest.raises(ModelUnavailableError, match="not a model directory"):
        load_backbone(str(tmp_path / "weights.bin"))


def test_an_unreachable_hub_fails_at_once_without_retries(monkeypatch):
    # Found by a hostile-user pass: without HF_HUB_OFFLINE an unreachable hub cost 46 s of
    # transformers' retries before the error. The hub's address is now probed once.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: refused
    start = time.monotonic()
    with pytest.raises(ModelUnavailableError, match=r"http://127\.0\.0\.1:9 cannot be reached"):
        load_backbone("nonexistent-org/nonexistent-model-xyz", task="encoder")
    assert time.monotonic() - start < 10


def test_truncated_weights_are_one_clear_line(llama_dir, tmp_path):
    # An interrupted copy used to raise safetensors' own SafetensorError.
    copy = tmp_path / "llama"
    shutil.copytree(llama_dir, copy)
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelUnavailableError, match="could not load") as info:
        load_backbone(str(copy))
    assert "\n" not in str(info.value)


def test_directory_without_model_files(tmp_path):
    with pytest.raises(ModelUnavailableError, match="could not load model directory"):
        load_backbone(str(tmp_path))


def test_behind_a_proxy_the_hub_is_not_probed_directly(monkeypatch):
    # found by review: the raw TCP probe ignores HTTPS_PROXY, so a hub reachable only through
    # the proxy looked unreachable and downloads that would have worked were refused
    from flare_xlt.models import hub

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert hub.hub_reachable()
    monkeypatch.delenv("HTTPS_PROXY")
    assert not hub.hub_reachable()


def test_an_unreachable_answer_is_asked_again_after_a_while(monkeypatch):
    # found by review: one network blip switched a whole long grid offline
    from flare_xlt.models import hub

    asked, probe = [], hub._probe  # a spy on the real probe (a closed local port)
    monkeypatch.setattr(hub, "_probe", lambda endpoint: asked.append(endpoint) or probe(endpoint))
    monkeypatch.setattr(hub, "_ANSWERS", {})
    closed = "http://127.0.0.1:9"
    assert not hub._reachable(closed) and not hub._reachable(closed)
    assert len(asked) == 1  # the negative answer is kept for a while
    monkeypatch.setattr(hub, "NEGATIVE_ANSWER_S", 0.0)
    assert not hub._reachable(closed)
    assert len(asked) == 2


def test_a_4bit_model_loads_where_this_process_computes():
    import torch

    from flare_xlt.models.quantization import quantized_device_map

    expected = {"": 0} if torch.cuda.is_available() else "cpu"
    assert quantized_device_map() == expected


def test_4bit_without_bitsandbytes_names_the_extra_to_install(monkeypatch):
    import sys

    from flare_xlt.models.quantization import QuantizationArgs

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import bitsandbytes fails
    with pytest.raises(
        FlareError, match=r"needs bitsandbytes: pip install 'flare-xlt\[quantization\]'"
    ):
        QuantizationArgs(load_in_4bit=True).loading_options()
