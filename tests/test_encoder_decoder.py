"""FLARE on an encoder-decoder backbone (a tiny random mT5): fusion in the encoder."""

import pytest
import torch
import transformers as tf
from tiny_models import VOCAB, random_batch, randomize_lora_b

from flare_xlt import FlareConfig, FlareModel
from flare_xlt.layer import fused_layers


def tiny_mt5(seed: int = 0) -> tf.MT5ForConditionalGeneration:
    torch.manual_seed(seed)
    config = tf.MT5Config(
        vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
        num_heads=4, dropout_rate=0.0, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )  # fmt: skip
    return tf.MT5ForConditionalGeneration(config).eval()


def inputs(target_pad: int = 0):
    ids, mask = random_batch(2, 7, 0, low=3)
    if target_pad:  # encoders read right-padded text
        ids = torch.cat([ids, torch.zeros(2, target_pad).long()], 1)
        mask = torch.cat([mask, torch.zeros(2, target_pad).long()], 1)
    source_ids, source_mask = random_batch(2, 5, 1, low=3)
    decoder_ids, _ = random_batch(2, 4, 2, low=3)
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "source_input_ids": source_ids,
        "source_attention_mask": source_mask,
        "decoder_input_ids": decoder_ids,
    }


def fused(fusion: str = "add_relu", seed: int = 0) -> FlareModel:
    model = FlareModel.from_base(tiny_mt5(seed), FlareConfig(fusion=fusion))
    randomize_lora_b(model)
    return model


def test_fusion_is_in_the_encoders_self_attention_only():
    model = FlareModel.from_base(tiny_mt5(), FlareConfig())
    layers = fused_layers(model)
    fusing = sorted(
        name.removeprefix("peft_model.base_model.model.")
        for name, layer in layers.items()
        if layer.lora_fusion
    )
    assert fusing == [
        f"encoder.block.{i}.layer.0.SelfAttention.{p}" for i in range(2) for p in ("q", "v")
    ]
    plain = [name for name, layer in layers.items() if not layer.lora_fusion]
    assert any("EncDecAttention" in n for n in plain) and any("decoder" in n for n in plain)
    assert model.flare_config.alignment == "token_index"  # the encoder's default


@pytest.mark.parametrize("fusion", ["add_relu", "cross_attention"])
def test_zero_b_equals_the_base(fusion):
    base = tiny_mt5()
    batch = inputs()
    with torch.no_grad():
        expected = base(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            decoder_input_ids=batch["decoder_input_ids"],
        ).logits
        out = FlareModel.from_base(base, FlareConfig(fusion=fusion))(**batch).logits
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_fusion_is_live_and_padding_of_either_side_changes_nothing():
    model = fused()
    batch = inputs()
    with torch.no_grad():
        reference = model(**batch).logits
        other = dict(batch, source_input_ids=(batch["source_input_ids"] + 7) % 60 + 3)
        assert not torch.allclose(model(**other).logits, reference)
        torch.testing.assert_close(
            model(**inputs(target_pad=3)).logits, reference, atol=1e-5, rtol=0
        )
        for pads in (torch.zeros(2, 2).long(), torch.zeros(2, 5).long()):
            for side in ("left", "right"):

                def padded(x, side=side, pads=pads):
                    return torch.cat([pads, x], 1) if side == "left" else torch.cat([x, pads], 1)

                source = dict(
                    batch,
                    source_input_ids=padded(batch["source_input_ids"]),
                    source_attention_mask=padded(batch["source_attention_mask"]),
                )
                torch.testing.assert_close(model(**source).logits, reference, atol=1e-5, rtol=0)


def test_cached_generation_matches_teacher_forcing():
    model = fused()
    batch = {k: v for k, v in inputs().items() if k != "decoder_input_ids"}
    generated = model.generate(
        **batch, max_new_tokens=5, do_sample=False, output_logits=True,
        return_dict_in_generate=True,
    )  # fmt: skip
    with torch.no_grad():
        forced = model(**batch, decoder_input_ids=generated.sequences[:, :-1]).logits
    stepwise = torch.stack(generated.logits, dim=1)  # [B, new, V]
    torch.testing.assert_close(stepwise, forced, atol=1e-4, rtol=1e-4)


def test_save_and_load_gives_identical_outputs(tmp_path):
    model = fused("gated")
    batch = inputs()
    with torch.no_grad():
        expected = model(**batch).logits
    model.save_pretrained(tmp_path)
    loaded = FlareModel.from_pretrained(tiny_mt5(), tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, expected, rtol=0, atol=0)


def test_training_moves_only_adapter_weights_and_the_source_pass_has_no_graph():
    model = fused("gated").train()
    model(**inputs()).logits.pow(2).mean().backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad and all("lora_" in n for n in with_grad)
    assert any("lora_fusion" in n for n in with_grad)
    for tensor in model.context.source.states.values():
        assert tensor.grad_fn is None and not tensor.requires_grad


def test_gradient_checkpointing_gives_identical_gradients():
    def grads(checkpointing: bool) -> dict:
        model = fused("cross_attention").train()
        if checkpointing:
            model.gradient_checkpointing_enable()
        model(**inputs()).logits.pow(2).mean().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    plain, checkpointed = grads(False), grads(True)
    assert plain.keys() == checkpointed.keys()
    for name in plain:  # float noise only (mT5 does not scale its attention logits)
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fusion", ["add_relu", "cross_attention"])
def test_beam_search_keeps_each_examples_source(fusion):
    model = fused(fusion)
    batch = {k: v for k, v in inputs().items() if k != "decoder_input_ids"}
    options = {"max_new_tokens": 4, "do_sample": False}
    beams = model.generate(**batch, num_beams=3, num_return_sequences=2, **options)
    assert beams.shape[0] == 4
    for row in range(2):  # each example's best beam is the one it gets generated alone
        alone = {k: v[row : row + 1] for k, v in batch.items()}
        single = model.generate(**alone, num_beams=3, **options)
        assert torch.equal(beams[2 * row, : single.shape[1]], single[0])


def test_the_source_cache_gives_the_same_losses(tmp_path):
    from flare_xlt.cache import SourceCache

    keys = ["a", "b"]

    def losses(model: FlareModel) -> list[float]:
        model.train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], 1e-2)
        seen = []
        for _ in range(2):  # the second epoch reads the cache
            loss = model(**inputs(), cache_keys=keys).logits.pow(2).mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            seen.append(loss.item())
        return seen

    reference = losses(fused())
    cached = fused()
    cached.source_cache = SourceCache()
    assert losses(cached) == reference
    assert len(cached.source_cache) == 2
    on_disk = fused()
    on_disk.source_cache = SourceCache(tmp_path)
    assert losses(on_disk) == reference


def test_plain_lora_merges_into_the_base():
    lora = FlareModel.from_base(tiny_mt5(), FlareConfig(source=None))
    randomize_lora_b(lora)
    batch = {k: v for k, v in inputs().items() if not k.startswith("source_")}
    with torch.no_grad():
        expected = lora(**batch).logits
        merged = lora.merge_and_unload()
        assert isinstance(merged, tf.MT5ForConditionalGeneration)
        torch.testing.assert_close(merged(**batch).logits, expected, rtol=1e-4, atol=1e-4)
