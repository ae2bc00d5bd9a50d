"""FLARE on 4-bit (QLoRA, bitsandbytes NF4) backbones, on the CPU."""

import pytest
import torch
import transformers as tf
from tiny_models import random_batch, randomize_lora_b, tiny_config

from flare_xlt import FlareConfig, FlareModel
from flare_xlt.layer import fused_4bit_class, fused_layers

bnb = pytest.importorskip("bitsandbytes")


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    # bitsandbytes' CPU inference kernel needs in_features >= its 64-value block size
    directory = tmp_path_factory.mktemp("llama")
    torch.manual_seed(0)
    config = tiny_config("llama", hidden_size=64, intermediate_size=128)
    tf.LlamaForCausalLM(config).save_pretrained(directory)
    return directory


def load_4bit(directory) -> torch.nn.Module:
    quantization = tf.BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32
    )
    model = tf.AutoModelForCausalLM.from_pretrained(
        directory, quantization_config=quantization, device_map="cpu"
    )
    return model.eval()


def inputs():
    ids, mask = random_batch(2, 7, 0, pad_left=2)
    source_ids, source_mask = random_batch(2, 5, 1)
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "source_input_ids": source_ids,
        "source_attention_mask": source_mask,
    }


def test_fused_layers_on_a_4bit_model_are_the_4bit_flare_layer(llama_dir):
    model = FlareModel.from_base(load_4bit(llama_dir), FlareConfig())
    layers = fused_layers(model)
    assert layers and all(isinstance(layer, fused_4bit_class()) for layer in layers.values())
    assert all(isinstance(layer.base_layer, bnb.nn.Linear4bit) for layer in layers.values())
    assert all(layer.base_layer.weight.dtype == torch.uint8 for layer in layers.values())


@pytest.mark.parametrize("fusion", ["add_relu", "cross_attention"])
def test_4bit_flare_with_zero_b_equals_the_4bit_base_exactly(llama_dir, fusion):
    base = load_4bit(llama_dir)
    batch = inputs()
    with torch.no_grad():
        expected = base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        model = FlareModel.from_base(base, FlareConfig(fusion=fusion))
        out = model(**batch)
    torch.testing.assert_close(out.logits, expected.logits, rtol=0, atol=0)


def test_4bit_training_moves_only_adapter_weights_and_fusion_is_live(llama_dir):
    model = FlareModel.from_base(load_4bit(llama_dir), FlareConfig(fusion="gated"))
    batch = inputs()
    target = {k: batch[k] for k in ("input_ids", "attention_mask")}

    def base_logits():  # the 4-bit base alone (bitsandbytes repacks its weights in place on
        with torch.no_grad(), model.peft_model.disable_adapter():  # the CPU, so compare what
            return model.hf_model(**target).logits  # the base computes, not its storage

    before = base_logits()
    floats = {n: p.detach().clone() for n, p in model.named_parameters() if p.is_floating_point()}
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(3):
        model(**batch).logits.pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    after = dict(model.named_parameters())
    assert trainable and all("lora_" in n for n in trainable)
    moved = {n for n, value in floats.items() if not torch.equal(after[n], value)}
    assert moved and moved <= set(trainable)
    torch.testing.assert_close(base_logits(), before, rtol=0, atol=0)
    with torch.no_grad():
        other = dict(batch, source_input_ids=(batch["source_input_ids"] + 7) % 60 + 3)
        assert not torch.allclose(model(**other).logits, model(**batch).logits)


def test_4bit_save_load_and_cached_generation(llama_dir, tmp_path):
    model = FlareModel.from_base(load_4bit(llama_dir), FlareConfig())
    randomize_lora_b(model)
    batch = inputs()
    with torch.no_grad():
        expected = model(**batch).logits
    model.save_pretrained(tmp_path)
    loaded = FlareModel.from_pretrained(load_4bit(llama_dir), tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, expected, rtol=0, atol=0)
    generated = loaded.generate(
        **batch, max_new_tokens=4, do_sample=False, output_logits=True,
        return_dict_in_generate=True, pad_token_id=0,
    )  # fmt: skip
    full_mask = torch.cat([batch["attention_mask"], torch.ones(2, 4).long()], dim=1)
    with torch.no_grad():
        forced = loaded(
            **dict(batch, input_ids=generated.sequences, attention_mask=full_mask),
            prompt_lengths=batch["attention_mask"].sum(-1),
        ).logits
    stepwise = torch.stack(generated.logits, dim=1)
    torch.testing.assert_close(stepwise, forced[:, 6:-1], atol=1e-4, rtol=1e-4)


def test_merging_a_4bit_lora_rounds_to_the_4bit_grid(llama_dir):
    # peft merges a 4-bit LoRA by dequantizing W0, adding s * B A and quantizing again, so the
    # merged model differs from the unmerged one by the NF4 rounding of the new weights.
    lora = FlareModel.from_base(load_4bit(llama_dir), FlareConfig(source=None))
    randomize_lora_b(lora)
    batch = {k: inputs()[k] for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        unmerged = lora(**batch).logits
        merged_model = lora.merge_and_unload()
        merged = merged_model(**batch).logits
    assert isinstance(merged_model.model.layers[0].self_attn.q_proj, bnb.nn.Linear4bit)
    assert not torch.equal(merged, unmerged)
    relative = (merged - unmerged).norm() / unmerged.norm()
    assert relative < 0.2  # the rounding, not a lost update
