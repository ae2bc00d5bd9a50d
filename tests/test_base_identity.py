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


def test_the_fingerprint_of_a_base_ignores_injected_adapters():
    base = tiny_model("llama")
    before = weights_fingerprint(base)
    model = FlareModel.from_base(base, FlareConfig())
    randomize_lora_b(model)
    assert weights_fingerprint(model.hf_model) == before
    assert describe_base(model.hf_model)["config"]["vocab_size"] == 64
