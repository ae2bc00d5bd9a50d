"""X-Mixup: the mixing layer, the loss and saving, on tiny random models of each architecture."""

import pytest
import torch
from tiny_models import DECODERS, random_batch, randomize_lora_b, tiny_model

from flare_xlt import FlareConfig, FlareError, XMixupConfig, XMixupModel
from flare_xlt.baselines.xmixup import MixupAttention, transformer_layers, xmixup_loss


def xmixup(arch: str, **settings) -> XMixupModel:
    model = XMixupModel.from_base(
        tiny_model(arch), FlareConfig(source=None), XMixupConfig(**settings)
    )
    randomize_lora_b(model)
    return model


def inputs(arch: str, english_pad: int = 0) -> dict:
    ids, mask = random_batch(2, 7, seed=0, pad_left=2 if arch in DECODERS else 0)
    english, english_mask = random_batch(2, 5, seed=1)
    if english_pad:  # the same English texts, right-padded by english_pad positions
        english = torch.nn.functional.pad(english, (0, english_pad), value=0)
        english_mask = torch.nn.functional.pad(english_mask, (0, english_pad), value=0)
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "source_input_ids": english,
        "source_attention_mask": english_mask,
    }


def test_zero_ratio_is_the_plain_lora_model(arch):
    model = xmixup(arch, max_ratio=0.0).eval()
    batch = inputs(arch)
    output = model(**batch)
    plain = model.lora(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    assert torch.equal(output.logits, plain.logits)
    english = model.lora(
        input_ids=batch["source_input_ids"], attention_mask=batch["source_attention_mask"]
    )
    assert torch.equal(output.source_logits, english.logits)


def test_mixing_reads_the_english_tokens_but_not_their_padding(arch):
    model = xmixup(arch).eval()
    mixed = model(**inputs(arch)).logits
    unmixed = xmixup(arch, max_ratio=0.0).eval()(**inputs(arch)).logits
    assert not torch.allclose(mixed, unmixed, atol=1e-4)
    padded = model(**inputs(arch, english_pad=3)).logits
    torch.testing.assert_close(padded, mixed, atol=1e-5, rtol=1e-5)
    other = inputs(arch)
    other["source_input_ids"] = torch.flip(other["source_input_ids"], dims=[1])
    assert not torch.allclose(model(**other).logits, mixed, atol=1e-4)


def test_padded_target_positions_are_not_mixed():
    mixer = MixupAttention(hidden_size=8, num_heads=2, max_ratio=0.5)
    target, english = torch.randn(2, 4, 8), torch.randn(2, 3, 8)
    target_mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    mixed, ratio = mixer(target, target_mask, english, torch.ones(2, 3))
    assert torch.equal(mixed[0, 0], target[0, 0])
    assert not torch.allclose(mixed[0, 1:], target[0, 1:])
    assert ratio.shape == (2,) and bool(((ratio > 0) & (ratio <= 0.5)).all())


def test_loss_formula_and_gradients_reach_adapter_and_mixer():
    model = xmixup("llama").train()
    output = model(**inputs("llama"), logits_to_keep=1)
    target, source = output.logits[:, -1, :3], output.source_logits[:, -1, :3]
    labels = torch.tensor([0, 2])
    loss = model.loss(target, source, labels)
    ce = torch.nn.functional.cross_entropy
    p_source = source.softmax(-1)
    kl = (p_source * (p_source.log() - target.log_softmax(-1))).sum(-1).mean()
    expected = 0.6 * ce(target, labels) + 0.4 * ce(source, labels) + kl
    torch.testing.assert_close(loss, expected)
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n and g is not None and g.abs().sum() > 0 for n, g in grads.items())
    assert grads["mixer.entropy_scale"] is not None and grads["mixer.entropy_scale"].abs() > 0
    same = xmixup_loss(target, target, labels, 0.0)  # no English weight, no disagreement
    torch.testing.assert_close(same, ce(target, labels))


def test_save_and_load_round_trip(tmp_path, arch):
    model = xmixup(arch, layer=0).eval()
    with torch.no_grad():
        model.mixer.entropy_bias.fill_(0.3)
    model.save_pretrained(tmp_path)
    loaded = XMixupModel.from_pretrained(tiny_model(arch), tmp_path).eval()
    assert loaded.xmixup_config == model.xmixup_config
    torch.testing.assert_close(loaded(**inputs(arch)).logits, model(**inputs(arch)).logits)
    with pytest.raises(FlareError, match=r"xmixup_config\.json is missing"):
        XMixupModel.from_pretrained(tiny_model(arch), tmp_path / "elsewhere")


def test_a_bad_saved_model_names_the_file_to_fix(tmp_path):
    xmixup("llama").save_pretrained(tmp_path)
    config = tmp_path / "xmixup_config.json"
    saved = config.read_text()
    config.write_text('{"layer": 0, "ratio": 0.5}')
    with pytest.raises(FlareError, match=r"xmixup_config\.json has unknown key\(s\) \['ratio'\]"):
        XMixupModel.from_pretrained(tiny_model("llama"), tmp_path)
    config.write_text("[0.5]")
    with pytest.raises(FlareError, match=r"xmixup_config\.json must hold a JSON object"):
        XMixupModel.from_pretrained(tiny_model("llama"), tmp_path)
    config.write_text("{")
    with pytest.raises(FlareError, match=r"xmixup_config\.json is not valid JSON"):
        XMixupModel.from_pretrained(tiny_model("llama"), tmp_path)
    config.write_text(saved)
    (tmp_path / "xmixup.safetensors").unlink()
    with pytest.raises(FlareError, match=r"xmixup\.safetensors is missing"):
        XMixupModel.from_pretrained(tiny_model("llama"), tmp_path)


def test_bad_settings_fail_clearly():
    with pytest.raises(FlareError, match="layer=5 is out of range: the model has 2 layers"):
        xmixup("llama", layer=5)
    with pytest.raises(FlareError, match="max_ratio"):
        XMixupConfig(max_ratio=1.5)
    with pytest.raises(FlareError, match="plain LoRA"):
        XMixupModel.from_base(tiny_model("llama"), FlareConfig(source="model"))
    model = xmixup("llama")
    batch = inputs("llama")
    with pytest.raises(FlareError, match="needs the English side"):
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    batch["source_input_ids"] = batch["source_input_ids"][:1]
    batch["source_attention_mask"] = batch["source_attention_mask"][:1]
    with pytest.raises(FlareError, match="batch size 1 but input_ids has 2"):
        model(**batch)


def test_the_middle_layer_is_the_default(arch):
    model = xmixup(arch)
    assert model.xmixup_config.layer == 1
    assert model._layer is transformer_layers(model.lora.hf_model)[1]
    assert model._no_split_modules == model.lora.hf_model._no_split_modules  # FSDP wrap unit


def test_what_is_mixed_in_is_english_states_of_the_same_layer():
    # Found on Gemma-3-270M (NusaX macro-F1 12.9 on sundanese): a fresh value/output
    # projection mixed random features of another scale into the residual stream.
    torch.manual_seed(0)
    mixer = MixupAttention(hidden_size=8, num_heads=2, max_ratio=0.5)
    target = 50 * torch.randn(2, 4, 8)
    english = (50 * torch.randn(1, 1, 8)).expand(2, 3, 8)  # one English state, three times
    mixed, ratio = mixer(target, torch.ones(2, 4), english, torch.ones(2, 3))
    expected = torch.lerp(target, english[:, :1].expand(2, 4, 8), ratio[:, None, None])
    torch.testing.assert_close(mixed, expected)
    assert (ratio > 0.25).all()
    # an example without English tokens is left as it is
    no_english = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    mixed, ratio = mixer(target, torch.ones(2, 4), english, no_english)
    assert ratio[1] == 0 and torch.equal(mixed[1], target[1])
