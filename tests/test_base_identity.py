"""An adapter loads only onto the base it was trained on (unless allowed on purpose)."""

import pytest
import torch
import transformers as tf
from tiny_models import randomize_lora_b, tiny_config, tiny_model

from flare_xlt import FlareConfig, FlareError, FlareModel
from flare_xlt.base_identity import describe_base, weights_fingerprint


@pytest.fixture
def saved(tmp_path):
    model = FlareModel.from_base(tiny_model("llama", seed=0), FlareConfig())
    randomize_lora_b(model)
    model.save_pretrained(tmp_path)
    return tmp_path


def test_another_base_of_the_same_shape_is_refused_naming_what_differs(saved):
    # Found by a hostile-user pass: only model_type, hidden size and layer count were
    # compared, so a same-shape base with other weights loaded silently.
    with pytest.raises(FlareError, match=r"trained on another base model .*different weights"):
        FlareModel.from_pretrained(tiny_model("llama", seed=1), saved)
    torch.manual_seed(0)
    other_vocab = tf.LlamaForCausalLM(tiny_config("llama", vocab_size=65)).eval()
    with pytest.raises(FlareError, match=r"config\.vocab_size"):
        FlareModel.from_pretrained(other_vocab, saved)
    wider_mlp = tf.LlamaForCausalLM(tiny_config("llama", intermediate_size=48)).eval()
    with pytest.raises(FlareError, match=r"config\.intermediate_size"):
        FlareModel.from_pretrained(wider_mlp, saved)


def test_allow_different_base_loads_on_purpose(saved):
    model = FlareModel.from_pretrained(
        tiny_model("llama", seed=1), saved, allow_different_base=True
    )
    assert model.flare_config.alignment == "end"


def test_the_same_weights_under_another_name_or_dtype_load(saved):
    base = tiny_model("llama", seed=0)
    base.config._name_or_path = "/elsewhere/copy-of-the-base"
    FlareModel.from_pretrained(base, saved)
    FlareModel.from_pretrained(tiny_model("llama", seed=0).to(torch.bfloat16), saved)


def test_an_fp16_copy_of_the_base_loads():
    # found by review: fp32 -> fp16 -> bf16 is not always fp32 -> bf16, so fp16 was refused
    saved_dir_model = FlareModel.from_base(tiny_model("llama", seed=0), FlareConfig())
    base = tiny_model("llama", seed=0).half()
    fp16 = describe_base(base)
    assert fp16["weights"] == describe_base(saved_dir_model.hf_model)["weights_fp16"]


def test_a_trained_classification_head_does_not_tie_the_adapter_to_its_random_init(tmp_path):
    # found by review: the base's freshly initialised head (modules_to_save) was in the
    # fingerprint, so reloading the same checkpoint with a new random head was refused
    config = FlareConfig(source=None, modules_to_save=["classifier"])
    FlareModel.from_base(tiny_model("bert", seed=0), config).save_pretrained(tmp_path)
    head_changed = tiny_model("bert", seed=0)
    torch.nn.init.normal_(head_changed.classifier.weight)
    FlareModel.from_pretrained(head_changed, tmp_path)
    body_changed = tiny_model("bert", seed=0)
    torch.nn.init.normal_(body_changed.bert.embeddings.word_embeddings.weight)
    with pytest.raises(FlareError, match="different weights"):
        FlareModel.from_pretrained(body_changed, tmp_path)


def test_config_entries_only_one_side_has_are_not_compared(saved):
    import json

    path = saved / "flare_config.json"
    payload = json.loads(path.read_text())
    payload["base_model"]["config"]["a_key_an_older_release_wrote"] = 1
    del payload["base_model"]["config"]["rms_norm_eps"]
    path.write_text(json.dumps(payload))
    FlareModel.from_pretrained(tiny_model("llama", seed=0), saved)


def test_the_fingerprint_of_a_base_ignores_injected_adapters():
    base = tiny_model("llama")
    before = weights_fingerprint(base)
    model = FlareModel.from_base(base, FlareConfig())
    randomize_lora_b(model)
    assert weights_fingerprint(model.hf_model) == before
    assert describe_base(model.hf_model)["config"]["vocab_size"] == 64
