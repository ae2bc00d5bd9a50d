"""``flare evaluate --target-only``: a FLARE adapter on the target text alone (tiny Llama)."""

import pytest
import torch
from own_sentiment import one_step_grid, sentiment_rows, write_jsonl
from tiny_models import random_batch, tiny_model
from typer.testing import CliRunner

from flare_xlt.cli import app
from flare_xlt.config import FlareConfig
from flare_xlt.errors import FlareError
from flare_xlt.model import FlareModel
from flare_xlt.recipes import load_config, run_experiment
from flare_xlt.recipes.target_only import TargetOnlyModel


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A FLARE adapter trained for one step on own files; the test file has no English."""
    root = tmp_path_factory.mktemp("target_only")
    overrides = one_step_grid(root)
    run_experiment(load_config(overrides=[*overrides, "methods=[flare]"]), progress=False)
    test = root / "data" / "javanese.test.jsonl"
    write_jsonl(test, sentiment_rows(6, english=None))  # read at test time only
    adapter = root / "run" / "cells" / "flare" / "javanese" / "seed42" / "adapter"
    return [arg for override in overrides for arg in ("--set", override)], adapter


def evaluate(method, sets, *extra):
    args = ["evaluate", "--method", method, "--lang", "javanese", *sets, "--quiet", *extra]
    return CliRunner().invoke(app, args)


def test_a_flare_adapter_runs_without_english_and_says_so(trained, monkeypatch):
    sets, adapter = trained
    calls = []
    forward = FlareModel.forward

    def recording_forward(self, *args, **kwargs):
        calls.append(kwargs)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(FlareModel, "forward", recording_forward)
    result = evaluate("flare", sets, "--adapter", str(adapter), "--target-only")
    assert result.exit_code == 0, result.output
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("flare javanese: macro_f1 = ")
    assert line.endswith("(English at test time: none)")
    assert calls and all(call["target_only"] for call in calls)
    assert not any("source_input_ids" in call for call in calls)

    # the same adapter with its English pass needs the English the test file lacks
    with_english = evaluate("flare", sets, "--adapter", str(adapter))
    assert isinstance(with_english.exception, FlareError)
    assert "has no English side, which this method needs" in str(with_english.exception)


@pytest.mark.parametrize("method", ["lora", "zero_shot", "translate_test", "x_mixup", "flare_mt"])
def test_methods_without_an_english_pass_refuse_the_flag(tmp_path, method):
    result = evaluate(method, ["--set", f"output_dir={tmp_path / 'run'}"], "--target-only")
    assert isinstance(result.exception, FlareError)
    message = str(result.exception)
    assert message == (
        "--target-only drops the English pass of a FLARE adapter (method flare); "
        f"method {method!r} has none to drop"
    )
    assert not (tmp_path / "run").exists()  # refused before stage 1


def test_the_wrapper_runs_forward_and_generate_without_english():
    flare = FlareModel.from_base(tiny_model("llama"), FlareConfig()).eval()
    wrapped = TargetOnlyModel(flare)
    ids, mask = random_batch(2, 6, seed=0, pad_left=2)
    with torch.no_grad():
        expected = flare(input_ids=ids, attention_mask=mask, target_only=True).logits
        assert torch.equal(wrapped(ids, mask).logits, expected)
    options = {"max_new_tokens": 3, "do_sample": False, "pad_token_id": 0}
    generated = flare.generate(ids, mask, target_only=True, **options)
    assert torch.equal(wrapped.generate(ids, mask, **options), generated)
    with pytest.raises(FlareError, match="source_input_ids is required"):
        flare(input_ids=ids, attention_mask=mask)  # what the wrapper spares the scorers


def test_the_wrapper_exposes_the_config_the_seq2seq_scorer_reads():
    # found by review: seq2seq label-word scoring reads config.decoder_start_token_id, and
    # the wrapper had no config, so --target-only crashed on an encoder-decoder backbone
    flare = FlareModel.from_base(tiny_model("llama"), FlareConfig())
    assert TargetOnlyModel(flare).config is flare.config
