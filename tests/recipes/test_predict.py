"""``flare predict``: a user's unlabeled file labelled by a trained adapter, resumable."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers as tf
from recipe_tokenizer import word_tokenizer
from tiny_models import tiny_config

from flare_xlt.errors import FlareError
from flare_xlt.recipes import load_config, predict
from flare_xlt.recipes import prediction as predict_module
from flare_xlt.recipes.stage1 import run_stage1
from flare_xlt.recipes.stage2 import Cell, cell_dir, prepare_method, run_cell
from flare_xlt.recipes.target_only import without_english
from flare_xlt.tasks.unlabeled_file import load_unlabeled_file

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "own_files"
UNLABELED = EXAMPLE / "nld_Latn.unlabeled.csv"
IDS = ["u1", "u2", "u3", "u4", "u5", "u6"]


def example_texts() -> list[str]:
    texts = [
        json.loads(line)[key]
        for path in EXAMPLE.glob("*.jsonl")
        for line in path.read_text().splitlines()
        for key in ("source_text", "target_text")
    ]
    texts += [line for line in UNLABELED.read_text().splitlines()]
    return texts + ["Label: negative neutral positive"] * 20


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """configs/own_files.yaml on a tiny Llama: its stage-1 model and a FLARE adapter (1 step)."""
    root = tmp_path_factory.mktemp("predict")
    tokenizer = word_tokenizer(example_texts(), vocab_size=400)
    torch.manual_seed(0)
    llama = tf.LlamaForCausalLM(tiny_config("llama", vocab_size=len(tokenizer), bos_token_id=2))
    llama.save_pretrained(root / "llama")
    tokenizer.save_pretrained(root / "llama")
    overrides = [
        f"backbone={root / 'llama'}",
        "methods=[flare]",
        "stage1.max_steps=1",
        "stage2.max_steps=1",
        "eval_batch_size=2",
    ]
    paths = {
        "output_dir": str(root / "run"),
        "data.files": str(EXAMPLE / "{language}.{split}.jsonl"),
    }
    config = load_config(ROOT / "configs" / "own_files.yaml", overrides, values=paths)
    stage1_dir = run_stage1(config, progress=False)
    cell = Cell("flare", ("nld_Latn",), 42)
    run_cell(config, cell, stage1_dir, progress=False)
    return {"config": config, "stage1": stage1_dir, "adapter": cell_dir(config, cell) / "adapter"}


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_flare(trained, output, **kwargs):
    return predict(
        trained["config"], "flare", kwargs.pop("input_path", UNLABELED), output,
        adapter_dir=kwargs.pop("adapter_dir", trained["adapter"]), progress=False, **kwargs,
    )  # fmt: skip


def test_predictions_are_the_scorers_with_its_probabilities(trained, tmp_path, monkeypatch):
    monkeypatch.setattr(predict_module, "BATCHES_PER_WRITE", 1)  # 3 writes of 2 rows
    summary = run_flare(trained, tmp_path / "preds.jsonl")
    assert (summary.rows, summary.predicted) == (6, 6)
    lines = read_lines(tmp_path / "preds.jsonl")
    assert [line["id"] for line in lines] == IDS
    setup = prepare_method(trained["config"], "flare", trained["stage1"], trained["adapter"])
    rows = load_unlabeled_file(UNLABELED, "classification", 1, "nld_Latn", english=True)
    features = [setup.featurize(example) for example in rows.examples]
    expected = setup.scorer.predict(setup.model, features, setup.collate, 4, progress=False)
    labels = trained["config"].data.label_names
    assert [line["label"] for line in lines] == [labels[i] for i in expected]
    for line in lines:
        probabilities = line["probabilities"]
        assert list(probabilities) == labels
        assert sum(probabilities.values()) == pytest.approx(1.0)
        assert max(probabilities, key=probabilities.get) == line["label"]
    record = json.loads(summary.record.read_text())
    assert record["input"] == str(UNLABELED) and record["settings"]["method"] == "flare"


def test_rows_are_featurized_chunk_by_chunk_with_one_truncation_line(
    trained, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(predict_module, "BATCHES_PER_WRITE", 1)  # chunks of 2 rows
    real = predict_module.predict_features
    tokenized = []

    def counting(setup, *args):
        tokenized.append(setup.featurize.truncations.seen["input"])
        return real(setup, *args)

    monkeypatch.setattr(predict_module, "predict_features", counting)
    with caplog.at_level("INFO", logger="flare_xlt"):
        run_flare(trained, tmp_path / "preds.jsonl")
    assert tokenized == [2, 4, 6]  # not all 6 before the first chunk is predicted
    cut_lines = [r.message for r in caplog.records if "unlabeled.csv:" in r.message]
    assert len(cut_lines) == 1 and "0 of 6 input texts cut to 64 tokens" in cut_lines[0]


def test_progress_bar_counts_the_rows(trained, tmp_path, capsys):
    predict(
        trained["config"], "flare", UNLABELED, tmp_path / "preds.jsonl",
        adapter_dir=trained["adapter"], progress=True,
    )  # fmt: skip
    bar = capsys.readouterr().err
    assert "predict flare: 100%" in bar and "6/6" in bar


def test_target_only_predicts_from_the_target_text_alone(trained, tmp_path):
    target_only = tmp_path / "target.jsonl"
    rows = load_unlabeled_file(UNLABELED, "classification", 1, "nld_Latn", english=False)
    target_only.write_text(
        "".join(
            json.dumps({"id": i, "target_text": e.target[0]}) + "\n"
            for i, e in zip(rows.ids, rows.examples, strict=True)
        )
    )
    summary = run_flare(trained, tmp_path / "preds.jsonl", input_path=target_only, target_only=True)
    lines = read_lines(tmp_path / "preds.jsonl")
    setup = without_english(
        prepare_method(trained["config"], "flare", trained["stage1"], trained["adapter"])
    )
    features = [setup.featurize(example) for example in rows.examples]
    expected = setup.scorer.predict(setup.model, features, setup.collate, 4, progress=False)
    labels = trained["config"].data.label_names
    assert [line["id"] for line in lines] == IDS
    assert [line["label"] for line in lines] == [labels[i] for i in expected]
    assert json.loads(summary.record.read_text())["settings"]["target_only"] is True
    # the same rows with their English read it: another run, refused on the same output
    with pytest.raises(FlareError, match=r"another run \(input_sha256, target_only\)"):
        run_flare(trained, tmp_path / "preds.jsonl")
    with pytest.raises(FlareError, match="method 'zero_shot' has none to drop"):
        predict(
            trained["config"], "zero_shot", target_only, tmp_path / "zs.jsonl",
            target_only=True, progress=False,
        )  # fmt: skip


def test_a_killed_run_resumes_without_losing_or_repeating_rows(trained, tmp_path, monkeypatch):
    reference = tmp_path / "reference.jsonl"
    run_flare(trained, reference)
    monkeypatch.setattr(predict_module, "BATCHES_PER_WRITE", 1)
    calls = []
    real = predict_module.predict_features

    def killed_after_two_writes(*args):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args)

    output = tmp_path / "preds.jsonl"
    monkeypatch.setattr(predict_module, "predict_features", killed_after_two_writes)
    with pytest.raises(KeyboardInterrupt):
        run_flare(trained, output)
    assert len(read_lines(output)) == 4
    monkeypatch.setattr(predict_module, "predict_features", real)
    assert run_flare(trained, output).predicted == 2
    same_as = read_lines(reference)
    assert [line["id"] for line in read_lines(output)] == IDS
    assert [line["label"] for line in read_lines(output)] == [line["label"] for line in same_as]
    # a kill in the middle of a write leaves a torn last line: it is cut and written again
    text = reference.read_text()
    torn = text[: text.index("\n", text.index("\n") + 1) + 20]  # two lines and a bit
    output.write_text(torn)
    assert run_flare(trained, output).predicted == 4
    assert [line["id"] for line in read_lines(output)] == IDS
    assert run_flare(trained, output).predicted == 0  # finished: nothing to do


def test_an_output_of_another_input_or_adapter_is_refused(trained, tmp_path):
    output = tmp_path / "preds.jsonl"
    run_flare(trained, output)
    other_input = tmp_path / "other.csv"
    other_input.write_text(UNLABELED.read_text().replace("Wat een", "Wat een mooie"))
    with pytest.raises(FlareError, match=r"holds predictions of another run \(input_sha256\)"):
        run_flare(trained, output, input_path=other_input)
    other_adapter = tmp_path / "adapter"
    shutil.copytree(trained["adapter"], other_adapter)
    (other_adapter / "flare_config.json").write_text(
        (other_adapter / "flare_config.json").read_text() + "\n"
    )
    with pytest.raises(FlareError, match=r"another run \(adapter_sha256\)"):
        run_flare(trained, output, adapter_dir=other_adapter)
    record = output.with_name(output.name + ".run.json")
    current = record.read_text()
    saved = json.loads(current)
    old = {"identity": saved.pop("settings"), **saved}  # as written before record schemas
    del old["schema"], old["kind"]
    record.write_text(json.dumps(old))
    with pytest.raises(FlareError, match=r"preds\.jsonl was written by an older flare-xlt"):
        run_flare(trained, output)
    record.write_text(current)
    foreign = tmp_path / "notes.jsonl"
    foreign.write_text('{"id": "u1"}\n')
    with pytest.raises(FlareError, match=r"exists without notes\.jsonl\.run\.json"):
        run_flare(trained, foreign)
    edited = read_lines(output)
    edited[1]["id"] = "u9"
    output.write_text("".join(json.dumps(line) + "\n" for line in edited[:3]))
    with pytest.raises(FlareError, match="line 2 is not the prediction of input row 2"):
        run_flare(trained, output)


def test_the_english_column_is_required_by_methods_that_read_it(trained, tmp_path):
    target_only = tmp_path / "target.jsonl"
    target_only.write_text('{"target_text": "Wat een dag!"}\n{"target_text": "De koffie."}\n')
    with pytest.raises(FlareError) as info:
        run_flare(trained, tmp_path / "preds.jsonl", input_path=target_only)
    message = str(info.value)
    assert "\n" not in message
    assert "field 'source_text': missing column(s) source_text" in message
    # zero_shot reads the target text only: row numbers stand in for the missing ids
    config = trained["config"]
    predict(config, "zero_shot", target_only, tmp_path / "zs.jsonl", progress=False)
    assert [line["id"] for line in read_lines(tmp_path / "zs.jsonl")] == [1, 2]


def test_wrong_input_columns_and_arguments_are_one_line_errors(trained, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,text,source_text\n1,a,b\n")
    with pytest.raises(FlareError, match=r"bad\.csv: line 1: field 'target_text': missing col"):
        run_flare(trained, tmp_path / "preds.jsonl", input_path=bad)
    with pytest.raises(FlareError, match="method 'flare' trains an adapter: pass --adapter DIR"):
        predict(trained["config"], "flare", UNLABELED, tmp_path / "p.jsonl", progress=False)
    with pytest.raises(FlareError, match=r"holds an adapter for flare, not for method 'lora'"):
        predict(
            trained["config"], "lora", UNLABELED, tmp_path / "p.jsonl",
            adapter_dir=trained["adapter"], progress=False,
        )  # fmt: skip
    two = load_config(
        ROOT / "configs" / "own_files.yaml",
        ["languages=[nld_Latn, afr_Latn]", "data.files=d/{language}.{split}.jsonl"],
    )
    with pytest.raises(FlareError, match=r"lists 2 languages \(nld_Latn, afr_Latn\).*\(--lang\)"):
        predict(two, "zero_shot", UNLABELED, tmp_path / "p.jsonl", progress=False)


def test_cli_predict_runs_in_a_real_process(trained, tmp_path):
    config = trained["config"]
    output = tmp_path / "preds.jsonl"
    command = [
        sys.executable, "-m", "flare_xlt.cli", "predict", "--method", "flare",
        "--config", str(ROOT / "configs" / "own_files.yaml"),
        "--set", f"backbone={config.backbone}", "--set", "eval_batch_size=2",
        "--set", "stage1.max_steps=1", "--set", "stage2.max_steps=1",
        "--set", f"data.files={config.data.files}", "--set", f"output_dir={config.output_dir}",
        "--adapter", str(trained["adapter"]), "--lang", "nld_Latn", "--quiet",
    ]  # fmt: skip
    done = subprocess.run(
        [*command, "--input", str(UNLABELED), "--output", str(output)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"wrote 6 predictions to {output} (6 predicted now" in done.stdout
    assert "nld_Latn.unlabeled.csv: 0 of 6 input texts cut to 64 tokens" in done.stderr
    assert [line["id"] for line in read_lines(output)] == IDS
    target_only = tmp_path / "target.csv"
    target_only.write_text("target_text\nWat een dag!\n")
    failed = subprocess.run(
        [*command, "--input", str(target_only), "--output", str(tmp_path / "p.jsonl")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert failed.returncode == 2
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "missing column(s) source_text" in last
    alone = subprocess.run(
        [*command, "--input", str(target_only), "--output", str(tmp_path / "p.jsonl"),
         "--target-only"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert alone.returncode == 0, alone.stderr[-2000:]
    assert [line["id"] for line in read_lines(tmp_path / "p.jsonl")] == [1]
