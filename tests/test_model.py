"""FlareModel semantics on tiny random Llama, Gemma3, Qwen2, BERT and XLM-R models."""

import pytest
import torch
from tiny_models import batch_inputs, logits, random_batch, randomize_lora_b, tiny_model

from flare_xlt import FlareConfig, FlareError, FlareModel


def test_fusion_is_live_and_ignores_source_padding(arch):
    model = FlareModel.from_base(tiny_model(arch), FlareConfig())
    randomize_lora_b(model)
    inputs = batch_inputs()
    pad = model.config.pad_token_id
    source_ids, source_mask = inputs["source_input_ids"], inputs["source_attention_mask"]
    with torch.no_grad():
        reference = logits(model, **inputs)
        other_source = dict(inputs, source_input_ids=(source_ids + 7) % 60 + 3)
        assert not torch.allclose(logits(model, **other_source), reference, atol=1e-4)
        for side in ("left", "right"):
            for amount in (1, 4):
                pads = torch.full((2, amount), pad)
                zeros = torch.zeros(2, amount, dtype=torch.long)
                parts = ((pads, source_ids), (zeros, source_mask))
                if side == "right":
                    parts = tuple(p[::-1] for p in parts)
                padded = dict(
                    inputs,
                    source_input_ids=torch.cat(parts[0], 1),
                    source_attention_mask=torch.cat(parts[1], 1),
                )
                torch.testing.assert_close(logits(model, **padded), reference, atol=1e-5, rtol=0)


def test_only_adapter_parameters_get_gradients_and_source_pass_has_no_graph(arch):
    model = FlareModel.from_base(tiny_model(arch), FlareConfig(fusion="gated")).train()
    randomize_lora_b(model)
    out = logits(model, **batch_inputs())
    for tensor in model.context.source.states.values():
        assert tensor.grad_fn is None and not tensor.requires_grad
    out.sum().backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad == {n for n, p in model.named_parameters() if p.requires_grad}
    assert with_grad and all("lora_" in n for n in with_grad)
    assert any("lora_fusion" in n for n in with_grad)


def test_gradient_checkpointing_gives_identical_gradients(arch):
    def grads(checkpointing: bool):
        model = FlareModel.from_base(tiny_model(arch), FlareConfig(fusion="cross_attention"))
        randomize_lora_b(model)
        model.train()
        if checkpointing:
            model.gradient_checkpointing_enable()
        logits(model, **batch_inputs()).pow(2).mean().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    plain, checkpointed = grads(False), grads(True)
    assert plain.keys() == checkpointed.keys()
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-5, atol=1e-7)


def test_save_and_load_gives_identical_outputs(arch, tmp_path):
    model = FlareModel.from_base(tiny_model(arch), FlareConfig(fusion="gated"))
    randomize_lora_b(model)
    with torch.no_grad():
        for layer_gate in (p for n, p in model.named_parameters() if "lora_fusion" in n):
            layer_gate.fill_(0.3)
        expected = logits(model, **batch_inputs())
    model.save_pretrained(tmp_path)
    assert (tmp_path / "adapter_model.safetensors").is_file()
    assert (tmp_path / "flare_config.json").is_file()
    loaded = FlareModel.from_pretrained(tiny_model(arch), tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(logits(loaded, **batch_inputs()), expected, rtol=0, atol=0)


def test_loading_into_another_architecture_or_size_fails_clearly(tmp_path):
    FlareModel.from_base(tiny_model("llama"), FlareConfig()).save_pretrained(tmp_path)
    with pytest.raises(FlareError, match="model_type='llama'"):
        FlareModel.from_pretrained(tiny_model("qwen2"), tmp_path)
    import transformers as tf
    from tiny_models import tiny_config

    bigger = tiny_config("llama", hidden_size=64, num_attention_heads=8)
    with pytest.raises(FlareError, match="hidden_size=32"):
        FlareModel.from_pretrained(tf.LlamaForCausalLM(bigger), tmp_path)


def test_plain_lora_merges_and_fusion_adapter_refuses():
    lora = FlareModel.from_base(tiny_model("llama"), FlareConfig(source=None))
    randomize_lora_b(lora)
    ids, mask = random_batch(2, 6, 0)
    with torch.no_grad():
        expected = lora(input_ids=ids, attention_mask=mask).logits
        merged = lora.merge_and_unload()
        torch.testing.assert_close(merged(input_ids=ids, attention_mask=mask).logits, expected)
    flare = FlareModel.from_base(tiny_model("llama"), FlareConfig())
    with pytest.raises(FlareError, match="only possible for plain LoRA"):
        flare.merge_and_unload()


def test_source_dropout_withholds_source_in_training_only():
    model = FlareModel.from_base(tiny_model("llama"), FlareConfig(source_dropout=1.0))
    randomize_lora_b(model)
    inputs = batch_inputs()
    target = {k: inputs[k] for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        model.train()
        dropped = logits(model, **inputs)
        assert torch.equal(dropped, logits(model, **target))  # no source needed when p > 0
        model.eval()
        torch.testing.assert_close(dropped, logits(model, **target, target_only=True))
        assert not torch.allclose(logits(model, **inputs), dropped)


def test_a_model_without_a_task_head_fuses_its_source():
    """``base_model`` of a bare body is the body itself: the source pass must not clear it."""
    import transformers as tf
    from tiny_models import tiny_config

    body = tf.AutoModel.from_config(tiny_config("bert")).eval()
    model = FlareModel.from_base(body, FlareConfig())
    randomize_lora_b(model)
    inputs = batch_inputs()
    other = dict(inputs, source_input_ids=(inputs["source_input_ids"] + 7) % 60 + 3)
    with torch.no_grad():
        hidden = model(**inputs).last_hidden_state
        assert not torch.allclose(model(**other).last_hidden_state, hidden, atol=1e-4)


def test_bad_inputs_raise_clear_value_errors():
    model = FlareModel.from_base(tiny_model("llama"), FlareConfig())
    inputs = batch_inputs()
    with pytest.raises(ValueError, match="source_input_ids has batch size 1"):
        model(**dict(inputs, source_input_ids=inputs["source_input_ids"][:1]))
    with pytest.raises(ValueError, match=r"source_input_ids is required.*target_only=True"):
        model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    with pytest.raises(ValueError, match="source_input_ids must be a 2-D integer tensor"):
        model(**dict(inputs, source_input_ids=inputs["source_input_ids"].float()))
    with pytest.raises(ValueError, match="source_attention_mask must have the shape"):
        model(**dict(inputs, source_attention_mask=inputs["source_attention_mask"][:, :2]))
    with pytest.raises(ValueError, match="latent_input_ids was given"):
        model(**inputs, latent_input_ids=inputs["source_input_ids"])
    with pytest.raises(ValueError, match="input_ids must be a 2-D integer tensor"):
        model(**dict(inputs, input_ids=inputs["input_ids"][0]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fusion": "concat"}, "fusion='concat' is not valid; choose one of 'add'"),
        ({"r": 0}, "r must be a positive integer"),
        ({"alpha": -1}, "alpha must be > 0"),
        ({"source": "english"}, "source='english' is not valid"),
        ({"alignment": "pad"}, "alignment='pad' is not valid"),
        ({"source_dropout": 1.5}, "source_dropout must be in"),
        ({"source_layer_offset": -1}, "source_layer_offset must be a non-negative"),
        (
            {"target_modules": ["q_proj", "v_proj"], "fusion_modules": ["o_proj"]},
            r"fusion_modules must name some of target_modules \['q_proj', 'v_proj'\]; \['o_proj'\]",
        ),
        ({"fusion_modules": ["up_proj"]}, None),  # checked against the model's defaults
        # found by review: a bare TypeError, or accepted
        ({"alpha": "16"}, "FlareConfig.alpha must be a number, got '16'"),
        ({"target_modules": 5}, "FlareConfig.target_modules must be a list of module names"),
    ],
)
def test_config_validation(kwargs, message):
    if message is None:
        with pytest.raises(FlareError, match=r"must name some of target_modules \['q_proj'"):
            FlareModel.from_base(tiny_model("llama"), FlareConfig(**kwargs))
        return
    with pytest.raises(FlareError, match=message):
        FlareConfig(**kwargs)


def test_trainable_parameters_summary():
    model = FlareModel.from_base(tiny_model("llama"), FlareConfig(r=4))
    summary = model.trainable_parameters()
    # q_proj (32 -> 32) and v_proj (32 -> 16) in 2 layers: A is r x d_in, B is d_out x r
    assert summary.trainable == 2 * (4 * 32 + 32 * 4 + 4 * 32 + 16 * 4)
    assert "trainable params" in str(summary)


def test_calling_the_hf_model_directly_does_not_reuse_a_stale_source():
    model = FlareModel.from_base(tiny_model("llama"), FlareConfig())
    randomize_lora_b(model)
    inputs = batch_inputs()
    target = {k: inputs[k] for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        model(**inputs)  # leaves the source in place, for gradient checkpointing's recompute
        direct = model.hf_model(**target).logits
        torch.testing.assert_close(direct, model(**target, target_only=True).logits)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"base_model": {}}', r"flare_config\.json has no \"flare\" key"),
        ("[1, 2]", r"flare_config\.json must hold a JSON object"),
        ('{"flare": 8}', r"flare_config\.json: \"flare\" must be a JSON object"),
    ],
)
def test_a_malformed_flare_config_file_names_the_file(tmp_path, content, message):
    (tmp_path / "flare_config.json").write_text(content)
    with pytest.raises(FlareError, match=message):
        FlareConfig.load_file(tmp_path)


def test_calling_the_body_directly_does_not_reuse_a_stale_source():
    # Found by review: the stale-source guard sat on the HF model only, so the body
    # (hf_model.model) called after a step fused the previous batch's English.
    model = FlareModel.from_base(tiny_model("llama"), FlareConfig())
    randomize_lora_b(model)
    inputs = batch_inputs()
    target = {k: inputs[k] for k in ("input_ids", "attention_mask")}
    body = model.hf_model.model
    with torch.no_grad():
        model(**target, target_only=True)
        without_source = body(**target).last_hidden_state
        model(**inputs)
        torch.testing.assert_close(body(**target).last_hidden_state, without_source)


@pytest.mark.parametrize("fusion", ["add_relu", "cross_attention"])
def test_beam_search_and_several_sequences_keep_each_examples_source(fusion):
    # Found by review: generate expands the target batch per beam, not the source batch.
    model = FlareModel.from_base(tiny_model("llama"), FlareConfig(fusion=fusion))
    randomize_lora_b(model)
    inputs = batch_inputs()
    options = {"max_new_tokens": 4, "do_sample": False, "pad_token_id": 0}
    beams = model.generate(**inputs, num_beams=3, num_return_sequences=2, **options)
    assert beams.shape == (4, inputs["input_ids"].shape[1] + 4)
    for row in range(2):  # each example's best beam is the one it gets generated alone
        alone = {k: v[row : row + 1] for k, v in inputs.items()}
        single = model.generate(**alone, num_beams=3, **options)
        assert torch.equal(beams[2 * row, -4:], single[0, -4:])


def test_bad_token_ids_and_lengths_are_one_line_errors():
    # Found by a hostile-user pass: raw IndexError / RuntimeError from inside the model.
    model = FlareModel.from_base(tiny_model("llama"), FlareConfig())
    inputs = batch_inputs()
    out_of_vocab = dict(inputs, source_input_ids=inputs["source_input_ids"] + 100)
    with pytest.raises(FlareError, match=r"source_input_ids holds token id .* outside the vocab"):
        model(**out_of_vocab)
    with pytest.raises(FlareError, match=r"input_ids holds token id -\d+, outside"):
        model(**dict(inputs, input_ids=inputs["input_ids"] - 10))
    empty = dict(inputs, source_input_ids=torch.zeros(2, 0).long())
    empty["source_attention_mask"] = torch.zeros(2, 0).long()
    with pytest.raises(FlareError, match="source_input_ids has no tokens"):
        model(**empty)
    model.config.max_position_embeddings = 6  # Llama ran past it silently
    with pytest.raises(FlareError, match=r"input_ids is 7 tokens long, but .* positions for 6"):
        model(**inputs)


@pytest.mark.parametrize("arch", ["bert", "xlm-roberta"])
def test_a_source_longer_than_an_encoders_position_table_is_a_one_line_error(arch):
    model = FlareModel.from_base(tiny_model(arch), FlareConfig())
    limit = 64 if arch == "bert" else 70 - 2  # XLM-R positions start after padding_idx
    ids = torch.randint(3, 60, (1, limit + 1))
    target = {"input_ids": ids[:, :8], "attention_mask": torch.ones(1, 8).long()}
    with pytest.raises(FlareError, match=f"source_input_ids is {limit + 1} tokens long"):
        model(**target, source_input_ids=ids, source_attention_mask=torch.ones_like(ids))
    with pytest.raises(FlareError, match=f"input_ids is {limit + 1} tokens long"):
        model(input_ids=ids, attention_mask=torch.ones_like(ids), target_only=True)
    fits = ids[:, :limit]
    model(**target, source_input_ids=fits, source_attention_mask=torch.ones_like(fits))


def test_saving_onto_a_file_or_an_unwritable_place_is_a_one_line_error(tmp_path):
    model = FlareModel.from_base(tiny_model("llama"), FlareConfig())
    a_file = tmp_path / "adapter"
    a_file.write_text("not a directory")
    with pytest.raises(FlareError, match=r"could not save the adapter to .*adapter"):
        model.save_pretrained(a_file)
    assert a_file.read_text() == "not a directory"  # nothing lost
    blocked = tmp_path / "blocked"
    (blocked / "adapter_model.safetensors").mkdir(parents=True)  # the weights file is a dir
    with pytest.raises(FlareError, match=r"could not save the adapter to .*blocked"):
        model.save_pretrained(blocked)
