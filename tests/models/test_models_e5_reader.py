"""The E5S1 reader, Q4_0 dequantisation and the E5S1 -> BertModel conversion, on a tiny file."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from conftest import PIECES, SPECIALS, TINY_E5, q4_encode, write_tokenizer_json

from flare_xlt.errors import FlareError
from flare_xlt.models import dequantize_q4_0, read_e5s1
from flare_xlt.models.convert import e5_tensor_names, e5_to_bert, e5_tokenizer


def test_q4_0_block_by_hand():
    # d = 0.25; byte j = low nibble j, high nibble 15 - j.
    raw = struct.pack("<e", 0.25) + bytes(j | ((15 - j) << 4) for j in range(16))
    weights = dequantize_q4_0(np.frombuffer(raw, dtype=np.uint8), 32)
    first = [-2.0, -1.75, -1.5, -1.25, -1.0, -0.75, -0.5, -0.25,
             0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]  # fmt: skip
    assert weights.dtype == np.float32
    assert weights.tolist() == first + first[::-1]


def test_q4_0_matches_slow_encoder_over_many_blocks():
    rng = np.random.default_rng(1)
    scales = rng.normal(size=50).astype(np.float16)
    raw, expected = q4_encode(scales, rng.integers(0, 16, (50, 32)))
    np.testing.assert_array_equal(dequantize_q4_0(np.frombuffer(raw, np.uint8), 1600), expected)


def test_q4_0_rejects_wrong_sizes():
    with pytest.raises(FlareError, match="does not hold"):
        dequantize_q4_0(np.zeros(18, np.uint8), 64)


def test_reader_header_vocab_and_tensors(synthetic_e5):
    e5 = read_e5s1(synthetic_e5.path)
    assert e5.version == 1
    assert e5.config == TINY_E5
    assert e5.pieces == PIECES
    np.testing.assert_array_equal(e5.scores, synthetic_e5.scores)
    assert (e5.bos, e5.eos, e5.pad, e5.unk) == tuple(SPECIALS.values())
    assert set(e5.tensors) == set(synthetic_e5.expected)
    for name, values in synthetic_e5.expected.items():
        np.testing.assert_array_equal(e5.tensor(name), values, err_msg=name)


def test_reader_rejects_bad_magic_and_truncation(tmp_path, synthetic_e5):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + synthetic_e5.path.read_bytes()[4:])
    with pytest.raises(FlareError, match="bad magic"):
        read_e5s1(bad)
    bad.write_bytes(synthetic_e5.path.read_bytes()[:200])
    with pytest.raises(FlareError, match="truncated"):
        read_e5s1(bad)
    with pytest.raises(FlareError, match="missing or empty"):
        read_e5s1(tmp_path / "absent.bin")


def test_bert_weights_equal_encoded_values(synthetic_e5):
    model = e5_to_bert(read_e5s1(synthetic_e5.path))
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size) == (32, 2, 64)
    assert (cfg.vocab_size, cfg.max_position_embeddings, cfg.layer_norm_eps) == (10, 16, 1e-12)
    assert model.pooler is None
    state = model.state_dict()
    for name, key in e5_tensor_names(TINY_E5.layers).items():
        expected = torch.from_numpy(synthetic_e5.expected[name]).reshape(state[key].shape)
        torch.testing.assert_close(state[key], expected, rtol=0, atol=0, msg=key)
    # Rows are output features: row 5 of fi.w is the 6th block pair of its weights.
    fi = model.encoder.layer[1].intermediate.dense.weight
    assert fi.shape == (64, 32)
    np.testing.assert_array_equal(fi[5].detach().numpy(), synthetic_e5.expected["l1.fi.w"][160:192])
    fo = model.encoder.layer[0].output.dense.weight
    assert fo.shape == (32, 64)


def test_tokenizer_wrapper_and_forward(tmp_path, synthetic_e5):
    model = e5_to_bert(read_e5s1(synthetic_e5.path))
    tokenizer = e5_tokenizer(write_tokenizer_json(tmp_path / "tokenizer.json", synthetic_e5.scores))
    assert tokenizer.padding_side == "right"
    assert tokenizer.model_max_length == 512
    assert [tokenizer.pad_token_id, tokenizer.mask_token_id, tokenizer.unk_token_id] == [1, 8, 3]
    batch = tokenizer(["hello world", "hello"], padding=True, return_tensors="pt")
    assert batch["input_ids"].tolist() == [[0, 4, 5, 2], [0, 4, 2, 1]]
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    assert hidden.shape == (2, 4, 32)
    assert torch.isfinite(hidden).all()
