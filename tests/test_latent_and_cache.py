"""FLARE-MT latent encoder and the per-example source cache."""

import json
import re

import pytest
import torch
import transformers as tf
from tiny_models import (
    random_batch,
    randomize_lora_b,
    tiny_config,
    tiny_m2m100_encoder,
    tiny_model,
)

from flare_xlt import FlareConfig, FlareError, FlareModel, LatentEncoder, SourceCache
from flare_xlt.fusion_context import SourceBatch
from flare_xlt.records import RECORD_SCHEMA


def latent_model(arch: str = "llama") -> FlareModel:
    base = tiny_model(arch)
    torch.manual_seed(3)
    encoder = LatentEncoder(tiny_m2m100_encoder(), hidden_size=base.config.hidden_size)
    return FlareModel.from_base(base, FlareConfig(source="latent"), latent_encoder=encoder)


def latent_inputs(seed: int = 0):
    ids, mask = random_batch(2, 6, seed, pad_left=1)
    latent_ids, latent_mask = random_batch(2, 8, seed + 10, low=4)
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "latent_input_ids": latent_ids,
        "latent_attention_mask": latent_mask,
    }


def test_latent_zero_b_equals_base_and_fusion_is_live():
    base_logits = tiny_model("llama")(
        **{k: latent_inputs()[k] for k in ("input_ids", "attention_mask")}
    ).logits
    model = latent_model()
    with torch.no_grad():
        torch.testing.assert_close(model(**latent_inputs()).logits, base_logits, rtol=0, atol=0)
        randomize_lora_b(model)
        reference = model(**latent_inputs()).logits
        changed = dict(
            latent_inputs(), latent_input_ids=latent_inputs()["latent_input_ids"].flip(1)
        )
        assert not torch.allclose(model(**changed).logits, reference, atol=1e-4)


def test_latent_gradients_reach_projection_not_encoder():
    model = latent_model().train()
    randomize_lora_b(model)
    model(**latent_inputs()).logits.sum().backward()
    assert model.latent_encoder.projection.weight.grad is not None
    assert all(
        p.grad is None and not p.requires_grad for p in model.latent_encoder.encoder.parameters()
    )
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all("lora_" in n or "latent_encoder.projection" in n for n in trainable)


def training_losses(model: FlareModel, batches, epochs: int) -> list[float]:
    """Plain SGD steps over ``batches`` for ``epochs``; returns every step's loss."""
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.train()
    losses = []
    for _ in range(epochs):
        for keys, batch in batches:
            loss = model(**batch, labels=batch["input_ids"], cache_keys=keys).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
    return losses


def test_cached_latent_states_give_identical_losses(tmp_path):
    batches = [(["a", "b"], latent_inputs(0)), (["c", "d"], latent_inputs(1))]
    uncached = training_losses(latent_model(), batches, epochs=2)
    for cache in (SourceCache(), SourceCache(tmp_path / "latent")):
        model = latent_model()
        model.source_cache = cache
        assert training_losses(model, batches, epochs=2) == uncached
        assert len(cache) == 4
    # the cache really is used: a poisoned encoder changes nothing once states are cached
    model = latent_model()
    model.source_cache = SourceCache()
    training_losses(model, batches[:1], epochs=1)
    with torch.no_grad():
        for p in model.latent_encoder.encoder.parameters():
            p.fill_(float("nan"))
    assert all(torch.isfinite(torch.tensor(training_losses(model, batches[:1], 1))))


def flare_batches():
    out = []
    for seed, keys in ((0, ["x1", "x2"]), (1, ["x3", "x4"])):
        ids, mask = random_batch(2, 7, seed, pad_left=2)
        source_ids, source_mask = random_batch(2, 5, seed + 5, pad_left=1)
        out.append(
            (
                keys,
                {
                    "input_ids": ids,
                    "attention_mask": mask,
                    "source_input_ids": source_ids,
                    "source_attention_mask": source_mask,
                },
            )
        )
    return out


@pytest.mark.parametrize("arch", ["gemma3", "bert"])
def test_flare_source_cache_gives_the_same_losses(arch, tmp_path):
    def fresh():
        model = FlareModel.from_base(tiny_model(arch), FlareConfig())
        randomize_lora_b(model)
        return model

    def losses(model):
        if arch == "bert":  # a classifier: labels are class ids
            return _classifier_losses(model, flare_batches())
        return training_losses(model, flare_batches(), epochs=2)

    reference = losses(fresh())
    in_memory = fresh()
    in_memory.source_cache = SourceCache()
    assert losses(in_memory) == reference
    on_disk = fresh()
    on_disk.source_cache = SourceCache(tmp_path, dtype=torch.bfloat16)
    torch.testing.assert_close(losses(on_disk), reference, rtol=2e-2, atol=1e-3)


def test_a_cache_directory_refuses_another_source_pass(tmp_path):
    keys, batch = flare_batches()[0]
    first = FlareModel.from_base(tiny_model("llama"), FlareConfig())
    first.source_cache = SourceCache(tmp_path)
    with torch.no_grad():
        expected = first(**batch, cache_keys=keys).logits
    stamps = {f: f.stat().st_mtime_ns for f in tmp_path.glob("*/*.safetensors")}
    again = FlareModel.from_base(tiny_model("llama"), FlareConfig())  # same pass: reused
    again.source_cache = SourceCache(tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(again(**batch, cache_keys=keys).logits, expected)
    assert stamps and {f: f.stat().st_mtime_ns for f in tmp_path.glob("*/*.safetensors")} == stamps
    for other, differ in (
        (FlareModel.from_base(tiny_model("gemma3"), FlareConfig()), "model"),
        (FlareModel.from_base(tiny_model("llama"), FlareConfig(source_layer_offset=1)), "offset"),
        # other weights under the same name, e.g. a merged stage-1 model (found by review)
        (FlareModel.from_base(tiny_model("llama", seed=1), FlareConfig()), "weights"),
    ):
        other.source_cache = SourceCache(tmp_path)
        with pytest.raises(FlareError, match=f"caches another source pass .*{differ}"):
            other(**batch, cache_keys=keys)
    with pytest.raises(FlareError, match="holds another source pass's states"):
        first.source_cache.bind({"source": "latent"})  # one cache object serves one pass
    producer = tmp_path / "producer.json"
    saved = json.loads(producer.read_text())
    assert (saved["schema"], saved["kind"]) == (RECORD_SCHEMA, "source_cache")
    producer.write_text(json.dumps(saved["settings"]))  # as written before record schemas
    again.source_cache = SourceCache(tmp_path)
    with pytest.raises(FlareError, match=rf"^{tmp_path} was written by an older flare-xlt"):
        again(**batch, cache_keys=keys)
    producer.unlink()  # states of unknown origin are not adopted
    with pytest.raises(FlareError, match=r"holds source states but no producer\.json"):
        SourceCache(tmp_path).bind({"source": "model"})


def _classifier_losses(model, batches):
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.train()
    out = []
    for _ in range(2):
        for keys, batch in batches:
            loss = model(**batch, labels=torch.tensor([0, 2]), cache_keys=keys).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            out.append(loss.item())
    return out


def test_latent_adapter_save_and_load(tmp_path):
    model = latent_model()
    randomize_lora_b(model)
    with torch.no_grad():
        expected = model(**latent_inputs()).logits
    model.save_pretrained(tmp_path)
    torch.manual_seed(99)  # the reloaded projection must come from the file
    encoder = LatentEncoder(tiny_m2m100_encoder(), hidden_size=32)
    loaded = FlareModel.from_pretrained(tiny_model("llama"), tmp_path, latent_encoder=encoder)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**latent_inputs()).logits, expected, rtol=0, atol=0)
    (tmp_path / "latent_projection.safetensors").unlink()
    with pytest.raises(FlareError, match=r"latent_projection\.safetensors is missing"):
        FlareModel.from_pretrained(tiny_model("llama"), tmp_path, latent_encoder=encoder)


def test_a_latent_encoder_for_a_flare_adapter_is_refused(tmp_path):
    FlareModel.from_base(tiny_model("llama"), FlareConfig()).save_pretrained(tmp_path)
    encoder = LatentEncoder(tiny_m2m100_encoder(), hidden_size=32)
    with pytest.raises(FlareError, match="is not a FLARE-MT adapter"):
        FlareModel.from_pretrained(tiny_model("llama"), tmp_path, latent_encoder=encoder)


def test_latent_encoder_from_pretrained_seq2seq_and_encoder(tmp_path):
    seq2seq = tmp_path / "m2m100"
    tf.M2M100ForConditionalGeneration(tiny_m2m100_encoder().config).save_pretrained(seq2seq)
    latent = LatentEncoder.from_pretrained(str(seq2seq), hidden_size=32)
    assert latent.encoder_hidden_size == 16 and latent.projection.out_features == 32
    assert latent(*random_batch(1, 4, 0)).shape == (1, 4, 32)
    bert = tmp_path / "bert"
    tf.BertModel(tiny_config("bert")).save_pretrained(bert)
    assert LatentEncoder.from_pretrained(str(bert), hidden_size=8).encoder_hidden_size == 32
    with pytest.raises(FlareError, match="could not load latent encoder"):
        LatentEncoder.from_pretrained(str(tmp_path / "missing"), hidden_size=8)


def halve(path):
    """Cut a file to half its size, as an interrupted copy or download leaves it."""
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_truncated_encoder_and_adapter_files_are_one_line_errors(tmp_path):
    # safetensors' own SafetensorError used to escape with a traceback.
    bert = tmp_path / "bert"
    tf.BertModel(tiny_config("bert")).save_pretrained(bert)
    halve(bert / "model.safetensors")
    with pytest.raises(FlareError, match="could not load latent encoder"):
        LatentEncoder.from_pretrained(str(bert), hidden_size=8)
    adapter = tmp_path / "adapter"
    FlareModel.from_base(tiny_model("llama"), FlareConfig()).save_pretrained(adapter)
    halve(adapter / "adapter_model.safetensors")
    with pytest.raises(FlareError, match="could not read adapter weights"):
        FlareModel.from_pretrained(tiny_model("llama"), adapter)


def test_latent_config_requires_encoder():
    with pytest.raises(FlareError, match="needs a latent_encoder"):
        FlareModel.from_base(tiny_model("llama"), FlareConfig(source="latent"))


def test_source_pass_keeps_one_tensor_per_distinct_layer_input():
    """q_proj and v_proj see the same input: the source batch (and the cache) hold it once."""
    model = FlareModel.from_base(tiny_model("llama"), FlareConfig())
    keys, batch = flare_batches()[0]
    with torch.no_grad():
        model(**batch)
    tensors, slots = model.context.source.unique_states()
    assert len(slots) == 4 and len(tensors) == 2  # 2 layers x (q_proj, v_proj)
    model.source_cache = SourceCache()
    with torch.no_grad():
        model(**batch, cache_keys=keys)
    stored, _, _ = model.source_cache._memory[keys[0]]
    assert len(stored) == 2


@pytest.mark.parametrize("slots", ["{", "[0]", None])
def test_a_torn_slots_file_in_the_source_cache_names_the_file(tmp_path, slots):
    cache = SourceCache(tmp_path)
    states = torch.randn(1, 3, 4)
    tokens = [torch.tensor([5, 6, 7])]
    cache.store(["a"], SourceBatch({"q": states, "v": states}, torch.ones(1, 3)), tokens)
    (slots_file,) = tmp_path.glob("*/*.json")
    if slots is None:
        slots_file.unlink()
    else:
        slots_file.write_text(slots)
    with pytest.raises(FlareError, match=rf"{re.escape(str(slots_file))} is .*; delete it and "):
        cache.load(["a"], tokens, torch.float32, torch.device("cpu"))


def test_a_directory_with_an_unrecognised_config_is_no_latent_encoder(tmp_path):
    (tmp_path / "config.json").write_text('{"hidden_size": 8}')  # no model_type
    with pytest.raises(FlareError, match=r"could not load latent encoder .*Unrecognized model"):
        LatentEncoder.from_pretrained(str(tmp_path), hidden_size=8)


def test_a_batch_of_empty_sources_is_served_from_the_cache(tmp_path):
    # Found by review: the cached batch was 0 columns wide and alignment failed obscurely.
    keys, batch = flare_batches()[0]
    empty = dict(batch, source_attention_mask=torch.zeros_like(batch["source_attention_mask"]))
    model = FlareModel.from_base(tiny_model("llama"), FlareConfig())
    randomize_lora_b(model)
    model.source_cache = SourceCache()
    with torch.no_grad():
        computed = model(**empty, cache_keys=keys).logits
        torch.testing.assert_close(model(**empty, cache_keys=keys).logits, computed)


def test_cached_latent_states_keep_the_encoders_dtype():
    # Found by review: cached latents came back in the backbone's dtype (bf16), computed
    # ones in the encoder's (fp32), so epoch 1 and later epochs fused different numbers.
    model = latent_model()
    model.hf_model.to(torch.bfloat16)
    model.source_cache = SourceCache()
    seen = []
    model.latent_encoder.projection.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].clone())
    )
    with torch.no_grad():
        for _ in range(2):
            model(**latent_inputs(), cache_keys=["a", "b"])
    computed, cached = seen
    assert computed.dtype == cached.dtype == torch.float32
    assert torch.equal(cached, computed)


def test_latent_adapters_train_under_checkpointing_and_refuse_the_reentrant_kind():
    # Found by review: re-entrant checkpointing back-propagated through the one shared
    # latent projection once per layer ("backward through the graph a second time").
    import warnings

    model = latent_model().train()
    with pytest.raises(FlareError, match="FLARE-MT needs use_reentrant=False"):
        model.gradient_checkpointing_enable({"use_reentrant": True})
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the deprecated transformers name
        model.gradient_checkpointing_enable()
    assert model.hf_model.is_activation_checkpointing
    model(**latent_inputs()).logits.sum().backward()
    assert model.latent_encoder.projection.weight.grad is not None


@pytest.mark.parametrize("on_disk", [False, True])
def test_a_cache_entry_of_other_source_tokens_is_refused(tmp_path, on_disk):
    # Found by review: an entry was identified by its key only, so a changed translation
    # (or tokenizer, or max_length) under the same example id was served stale states.
    keys, batch = flare_batches()[0]
    model = FlareModel.from_base(tiny_model("llama"), FlareConfig())
    model.source_cache = SourceCache(tmp_path if on_disk else None)
    retranslated = dict(batch, source_input_ids=(batch["source_input_ids"] + 1) % 60 + 3)
    with torch.no_grad():
        model(**batch, cache_keys=keys)
        padded_differently = {  # the same tokens with more padding are the same entry
            "source_input_ids": torch.nn.functional.pad(batch["source_input_ids"], (2, 0)),
            "source_attention_mask": torch.nn.functional.pad(
                batch["source_attention_mask"], (2, 0)
            ),
        }
        model(**dict(batch, **padded_differently), cache_keys=keys)
        with pytest.raises(FlareError, match=r"entry 'x1' .* computed from other source tokens"):
            model(**retranslated, cache_keys=keys)


def test_a_cache_file_without_token_ids_names_the_directory(tmp_path):
    from safetensors.torch import load_file, save_file

    keys, batch = flare_batches()[0]
    model = FlareModel.from_base(tiny_model("llama"), FlareConfig())
    model.source_cache = SourceCache(tmp_path)
    with torch.no_grad():
        model(**batch, cache_keys=keys)
    for path in tmp_path.glob("*/*.safetensors"):  # as written before entries kept their ids
        tensors = load_file(str(path))
        del tensors["source_token_ids"]
        save_file(tensors, str(path))
    with pytest.raises(FlareError, match="was written by an older flare-xlt; delete"):
        model(**batch, cache_keys=keys)
