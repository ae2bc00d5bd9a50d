"""The source strategies: FLARE's English pass through the same model (``ModelSource``) and
FLARE-MT's latent encoder (``LatentSource``)."""

import pytest
import torch
from tiny_models import (
    batch_inputs,
    logits,
    random_batch,
    randomize_lora_b,
    tiny_m2m100_encoder,
    tiny_model,
)

from flare_xlt import FlareConfig, FlareModel, LatentEncoder, SourceCache
from flare_xlt.alignment import pack_real_tokens_first
from flare_xlt.layer import fused_layers
from flare_xlt.sources import LATENT_KEY, LatentSource, ModelSource


def hooks(modules) -> dict[str, tuple[int, int]]:
    """Forward pre-hooks and forward hooks per module of ``modules`` (name -> module)."""
    return {
        name: (len(module._forward_pre_hooks), len(module._forward_hooks))
        for name, module in modules.items()
    }


def padded_source():
    """English ids and mask ``[2, 6]``, row 0 left-padded, row 1 right-padded."""
    ids, mask = random_batch(2, 6, 1)
    mask[0, :2] = 0
    mask[1, -1] = 0
    return ids, mask


def test_model_source_encodes_the_frozen_projection_inputs_of_the_packed_english():
    base = tiny_model("llama")
    reference = {}  # the fused projections' inputs on the base model itself
    for name, module in base.named_modules():
        if name.endswith(("q_proj", "v_proj")):
            module.register_forward_pre_hook(
                lambda module, args, name=name: reference.__setitem__(name, args[0])
            )
    ids, mask = padded_source()
    packed_ids, packed_mask = pack_real_tokens_first(ids, mask)
    with torch.no_grad():
        base.model(input_ids=packed_ids, attention_mask=packed_mask, use_cache=False)
    model = FlareModel.from_base(tiny_model("llama"), FlareConfig()).train()
    randomize_lora_b(model)  # a trained adapter: the English pass runs without it
    assert isinstance(model.source, ModelSource)
    batch = model.source.encode(ids, mask)
    assert torch.equal(batch.mask, packed_mask) and batch.padded_mask is None
    assert {key.removeprefix("base_model.model.") for key in batch.states} == set(reference)
    for key, states in batch.states.items():
        assert torch.equal(states, reference[key.removeprefix("base_model.model.")])
    assert model.training and all(m.training for m in model.modules() if m is not model)
    with torch.no_grad():  # what the model fuses is what encode returns
        model(**batch_inputs(), target_only=False)
        fused = model.context.source
    expected = model.source.encode(
        *[batch_inputs()[k] for k in ("source_input_ids", "source_attention_mask")]
    )
    assert fused.states.keys() == expected.states.keys()
    for key in expected.states:
        assert torch.equal(fused.states[key], expected.states[key])


def test_model_source_hidden_states_are_the_base_models_on_the_packed_english():
    ids, mask = padded_source()
    packed_ids, packed_mask = pack_real_tokens_first(ids, mask)
    with torch.no_grad():
        out = tiny_model("gemma3").model(
            input_ids=packed_ids, attention_mask=packed_mask, output_hidden_states=True
        )
    config = FlareConfig(source_representation="hidden_state", alignment="position")
    model = FlareModel.from_base(tiny_model("gemma3"), config)
    randomize_lora_b(model)
    batch = model.source.encode(ids, mask)
    assert list(batch.states) == [f"hidden_state.{i}" for i in range(3)]
    for i, hidden in enumerate(out.hidden_states):
        assert torch.equal(batch.states[f"hidden_state.{i}"], hidden)
    assert torch.equal(batch.padded_mask, mask)  # position alignment pairs raw positions


def test_latent_source_encodes_the_encoders_states_of_the_packed_text():
    torch.manual_seed(3)
    encoder = LatentEncoder(tiny_m2m100_encoder(), hidden_size=32)
    model = FlareModel.from_base(tiny_model("llama"), FlareConfig(source="latent"), encoder)
    assert isinstance(model.source, LatentSource)
    ids, mask = random_batch(2, 8, 4, pad_left=3, low=4)
    packed_ids, packed_mask = pack_real_tokens_first(ids, mask)
    with torch.no_grad():
        expected = encoder.encoder(input_ids=packed_ids, attention_mask=packed_mask)
    batch = model.source.encode(ids, mask)
    assert list(batch.states) == [LATENT_KEY] and torch.equal(batch.mask, packed_mask)
    assert torch.equal(batch.states[LATENT_KEY], expected.last_hidden_state)
    assert {model.source.layer_key(name) for name in fused_layers(model.peft_model)} == {LATENT_KEY}


def test_a_source_pass_leaves_no_hook_and_every_adapter_on():
    for config in (FlareConfig(), FlareConfig(source_representation="hidden_state")):
        model = FlareModel.from_base(tiny_model("llama"), config).train()
        model.peft_model.base_model.model.model.layers[1].requires_grad_(False)
        trainable = {name: p.requires_grad for name, p in model.named_parameters()}
        layers = fused_layers(model)
        layer_hooks = hooks(layers)
        with torch.no_grad():
            model(**batch_inputs())  # transformers adds its own output-recording hooks once
            before = hooks(dict(model.named_modules()))
            model(**batch_inputs())
        assert hooks(dict(model.named_modules())) == before
        assert {name: before[name] for name in layers} == layer_hooks  # none of ours stayed
        ids, mask = random_batch(2, 5, 0)
        with pytest.raises(IndexError):  # a pass that fails half-way (ids past the vocabulary)
            model.source.encode(ids + 100, mask)
        assert hooks(dict(model.named_modules())) == before
        assert not any(layer.disable_adapters for layer in fused_layers(model).values())
        assert {name: p.requires_grad for name, p in model.named_parameters()} == trainable


def test_the_producer_record_of_a_source_cache_is_unchanged():
    # a cache directory written before the source strategies existed must still be accepted
    model = FlareModel.from_base(tiny_model("llama"), FlareConfig())
    record = model.source.description()
    assert record == {
        "source": "model",
        "source_representation": "projection_input",
        "source_layer_offset": 0,
        "target_modules": ["q_proj", "v_proj"],
        "fusion_modules": ["q_proj", "v_proj"],
        "model": {
            "model_type": "llama",
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "name_or_path": "",
        },
        "weights": record["weights"],
    }
    encoder = LatentEncoder(tiny_m2m100_encoder(), hidden_size=32, name_or_path="nllb")
    latent = FlareModel.from_base(tiny_model("llama"), FlareConfig(source="latent"), encoder)
    record = latent.source.description()
    assert set(record) == {
        "source", "source_representation", "source_layer_offset", "target_modules",
        "fusion_modules", "latent_encoder", "weights",
    }  # fmt: skip
    assert record["source"] == "latent" and record["latent_encoder"] == "nllb"
    cache = SourceCache()
    latent.source_cache = cache
    with torch.no_grad():
        latent(
            input_ids=batch_inputs()["input_ids"],
            attention_mask=batch_inputs()["attention_mask"],
            latent_input_ids=random_batch(2, 8, 0, low=4)[0],
            cache_keys=["a", "b"],
        )
    assert cache._producer == record


@pytest.mark.parametrize("representation", ["projection_input", "hidden_state"])
@pytest.mark.parametrize("offset", [0, 1])
def test_source_representation_and_layer_offset(representation, offset):
    config = FlareConfig(source_representation=representation, source_layer_offset=offset)
    model = FlareModel.from_base(tiny_model("gemma3"), config)
    randomize_lora_b(model)
    with torch.no_grad():
        out = logits(model, **batch_inputs())
    assert torch.isfinite(out).all()
    keys = {layer.flare_source_key for layer in fused_layers(model).values()}
    if representation == "hidden_state":
        assert keys == {f"hidden_state.{i + offset}" for i in range(2)}
    elif offset == 1:  # layer 0 reads layer 1; the last layer has no partner (zero source)
        assert any(".1." in key for key in keys) and any(".2." in key for key in keys)


@pytest.mark.parametrize("arch_name", ["bert", "xlm-roberta"])
def test_hidden_state_source_equals_projection_input_on_post_ln_encoders(arch_name):
    """On a post-LN encoder the query/value input of layer i *is* hidden state i, so both
    source representations give the same logits, also with a trained (non-zero B) adapter:
    the English pass must run without the adapter in either mode."""
    outputs = []
    for representation in ("projection_input", "hidden_state"):
        config = FlareConfig(source_representation=representation)
        model = FlareModel.from_base(tiny_model(arch_name), config)
        randomize_lora_b(model)
        with torch.no_grad():
            outputs.append(logits(model, **batch_inputs()))
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-5, rtol=0)


def test_the_source_pass_uses_the_original_modules_to_save():
    # Found by review: trained copies of modules_to_save inside the body (e.g. embeddings)
    # changed the "frozen" English pass, and made cached states stale.
    config = FlareConfig(modules_to_save=["embed_tokens"])
    model = FlareModel.from_base(tiny_model("llama"), config).train()
    inputs = batch_inputs()
    with torch.no_grad():
        model(**inputs)
        before = {k: v.clone() for k, v in model.context.source.states.items()}
        for name, param in model.named_parameters():
            if "modules_to_save" in name:
                param.add_(1.0)
        model(**inputs)
    for key, states in model.context.source.states.items():
        torch.testing.assert_close(states, before[key], rtol=0, atol=0)
    trained = [n for n, p in model.named_parameters() if "modules_to_save" in n and p.requires_grad]
    assert trained  # the trained copy is switched back on after the source pass
    # ... and a model the caller froze stays frozen (peft's switch sets requires_grad)
    model.requires_grad_(False)
    with torch.no_grad():
        model(**inputs)
    assert not any(p.requires_grad for p in model.parameters())
