"""The fused LoRA layers (``FlareLinear``) and their injection through peft."""

import pytest
import torch
from tiny_models import batch_inputs, logits, random_batch, randomize_lora_b, tiny_model

from flare_xlt import FlareConfig, FlareError, FlareModel
from flare_xlt.alignment import Alignment, gather_aligned
from flare_xlt.fusion_context import FusionContext, SourceBatch
from flare_xlt.layer import adapters_disabled, fused_layers


def test_a_fused_layer_computes_its_formula_and_runs_plain_when_disabled():
    """``y = W0 x + s B(relu(A x_s) + relu(A x_t))`` with each target token's aligned source
    token (zero without a partner or without a source); adapter off: ``W0 x``."""
    model = FlareModel.from_base(tiny_model("llama"), FlareConfig(fusion="add_relu"))
    randomize_lora_b(model)
    layer = next(iter(fused_layers(model.peft_model).values()))
    down, up = layer.lora_A["default"], layer.lora_B["default"]
    scaling = layer.scaling["default"]
    torch.manual_seed(0)
    x, source = torch.randn(2, 3, 32), torch.randn(2, 4, 32)
    alignment = Alignment.from_index(torch.tensor([[0, 1, -1], [3, 2, 1]]))
    context = FusionContext("token_index", "none")
    context.source = SourceBatch({"key": source}, torch.ones(2, 4, dtype=torch.long))
    context.alignment = alignment
    layer.flare_context, layer.flare_source_key = context, "key"
    with torch.no_grad():
        aligned = gather_aligned(down(source), alignment)
        fused = torch.relu(aligned) + torch.relu(down(x))
        torch.testing.assert_close(layer(x), layer.base_layer(x) + scaling * up(fused))
        context.source = None
        no_source = layer.base_layer(x) + scaling * up(torch.relu(down(x)))
        torch.testing.assert_close(layer(x), no_source)
        with adapters_disabled([layer]):
            assert torch.equal(layer(x), layer.base_layer(x))
    assert not layer.disable_adapters and down.weight.requires_grad


@pytest.mark.parametrize("fusion", ["add_relu", "mul", "cross_attention", "gated"])
def test_zero_b_output_equals_base(arch, fusion):
    base = tiny_model(arch)
    inputs = batch_inputs()
    with torch.no_grad():
        expected = base(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
        ).logits
    model = FlareModel.from_base(base, FlareConfig(fusion=fusion))
    with torch.no_grad():
        torch.testing.assert_close(logits(model, **inputs), expected, rtol=0, atol=0)


def test_add_fusion_without_source_equals_plain_lora():
    flare = FlareModel.from_base(tiny_model("qwen2"), FlareConfig(fusion="add"))
    lora = FlareModel.from_base(tiny_model("qwen2"), FlareConfig(source=None))
    randomize_lora_b(flare)
    randomize_lora_b(lora)
    lora.load_state_dict(flare.state_dict(), strict=False)
    ids, mask = random_batch(2, 6, 0)
    with torch.no_grad():
        torch.testing.assert_close(
            flare(input_ids=ids, attention_mask=mask, target_only=True).logits,
            lora(input_ids=ids, attention_mask=mask).logits,
            rtol=0,
            atol=0,
        )


def test_building_a_model_raises_no_deprecation_noise():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # peft's is_gradient_checkpointing read
        FlareModel.from_base(tiny_model("llama"), FlareConfig())


@pytest.mark.parametrize("fusion", ["cross_attention", "gated", "add_relu"])
def test_every_trainable_parameter_gets_a_gradient_with_a_layer_offset(fusion):
    # Found by review: with source_layer_offset=1 the last layer has no source, and its
    # cross-attention got no gradient at all, which DDP (find_unused_parameters=False) rejects.
    config = FlareConfig(fusion=fusion, source_layer_offset=1)
    model = FlareModel.from_base(tiny_model("llama"), config).train()
    randomize_lora_b(model)
    logits(model, **batch_inputs()).pow(2).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing


def test_lora_on_every_linear_layer_with_fusion_in_q_and_v_only(tmp_path):
    # The paper's LLM setting (METHOD.md): LoRA on all linear layers, fusion only in q/v.
    linear = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    config = FlareConfig(target_modules=linear, fusion_modules=["q_proj", "v_proj"])
    model = FlareModel.from_base(tiny_model("llama"), config).train()
    randomize_lora_b(model)
    inputs = batch_inputs()
    out = logits(model, **inputs)
    captured = {key.rsplit(".", 1)[-1] for key in model.context.source.states}
    assert captured == {"q_proj", "v_proj"}  # the other projections' inputs are not kept
    out.pow(2).mean().backward()
    adapted = {
        n.split(".lora_")[0].rsplit(".", 1)[-1]
        for n, p in model.named_parameters()
        if p.grad is not None
    }
    assert adapted == set(linear)
    layers = fused_layers(model.peft_model)
    fused = {name.rsplit(".", 1)[-1] for name, layer in layers.items() if layer.lora_fusion}
    assert fused == {"q_proj", "v_proj"}
    model.eval()
    with torch.no_grad():
        expected = logits(model, **inputs)
        other_source = dict(inputs, source_input_ids=(inputs["source_input_ids"] + 7) % 60 + 3)
        assert not torch.allclose(logits(model, **other_source), expected, atol=1e-4)
    model.save_pretrained(tmp_path)
    loaded = FlareModel.from_pretrained(tiny_model("llama"), tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(logits(loaded, **inputs), expected, rtol=0, atol=0)


def test_fusion_modules_match_dotted_names_as_peft_does():
    # Found by review: only the last name part was compared, so dotted names fused nothing.
    config = FlareConfig(
        target_modules=["self_attn.q_proj", "self_attn.v_proj"],
        fusion_modules=["self_attn.q_proj"],
    )
    model = FlareModel.from_base(tiny_model("llama"), config)
    layers = fused_layers(model.peft_model)
    fused = {name.rsplit(".", 1)[-1] for name, layer in layers.items() if layer.lora_fusion}
    assert fused == {"q_proj"}
    unmatched = FlareConfig(target_modules=["q_proj", "gate"], fusion_modules=["gate"])
    with pytest.raises(FlareError, match=r"no adapted layer matched fusion_modules=\['gate'\]"):
        FlareModel.from_base(tiny_model("llama"), unmatched)
