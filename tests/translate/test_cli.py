"""``flare translate`` via typer's CliRunner, with tiny model directories and a tiny NusaX copy."""

import csv
import json

import huggingface_hub.constants
import pytest
import typer
from _llm_support import save_tiny_llm
from _translate_support import save_tiny_model
from typer.testing import CliRunner

from flare_xlt.cli import app as flare_app
from flare_xlt.cli import translate as translate_cli
from flare_xlt.evaluate import chrf
from flare_xlt.tasks import load_parallel_file
from flare_xlt.translate import DEFAULT_PROMPT

ENGLISH = [
    ("1", "The food was great.", "positive"),
    ("2", "The city is big.", "neutral"),
    ("3", "The king was sad. The queen was sad.", "negative"),
]
JAVANESE = [
    ("1", "Panganane enak.", "positive"),
    ("2", "Kuthane gedhe.", "neutral"),
    ("3", "Ratune sedih.", "negative"),
]


def write_csv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "label"])
        writer.writerows(rows)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = root / "data"
    for split in ("train", "test"):
        write_csv(data / "nusax" / "sentiment" / "english" / f"{split}.csv", ENGLISH)
        write_csv(data / "nusax" / "sentiment" / "javanese" / f"{split}.csv", JAVANESE)
    return {"model": str(save_tiny_model(root / "tiny")), "data": str(data), "root": root}


def args(setup, split, output, *extra):
    return [
        "--task", "nusax_senti", "--lang", "jv", "--split", split,
        "--model", setup["model"], "--output", str(output), "--data-dir", setup["data"],
        "--cache", str(setup["root"] / "cache.jsonl"), "--num-beams", "1",
        "--max-new-tokens", "6", *extra,
    ]  # fmt: skip


def test_translate_train_then_rerun_from_cache(setup, tmp_path):
    output = tmp_path / "jv.train.jsonl"
    runner = CliRunner()
    result = runner.invoke(translate_cli.app, args(setup, "train", output))
    assert result.exit_code == 0, result.output
    assert "wrote 3 of 3 examples" in result.output
    loaded = load_parallel_file(output, "classification", ("negative", "neutral", "positive"), "jv")
    assert [ex.source for ex in loaded] == [(text,) for _, text, _ in ENGLISH]
    assert [ex.label for ex in loaded] == [2, 1, 0]
    provenance = json.loads((tmp_path / "jv.train.jsonl.provenance.json").read_text())
    assert provenance["direction"] == "to_target" and provenance["model"]["id"] == setup["model"]
    assert provenance["languages"]["to"]["token"] == "__jv__"

    again = runner.invoke(translate_cli.app, args(setup, "train", tmp_path / "again.jsonl"))
    assert again.exit_code == 0, again.output
    assert "0 newly translated" in again.output
    assert (tmp_path / "again.jsonl").read_text() == output.read_text()


def test_test_split_is_translated_into_english(setup, tmp_path):
    output = tmp_path / "jv.test.jsonl"
    result = CliRunner().invoke(translate_cli.app, args(setup, "test", output, "--no-cache"))
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["target_text"] for r in records] == [text for _, text, _ in JAVANESE]
    provenance = json.loads((tmp_path / "jv.test.jsonl.provenance.json").read_text())
    assert provenance["direction"] == "to_english" and provenance["cache"] is None


def command_registration():
    main = typer.Typer()
    main.command("translate")(translate_cli.translate)
    main.command("other")(lambda: None)
    return main


def typer_registration():
    main = typer.Typer()
    main.add_typer(translate_cli.app, name="translate")
    main.command("other")(lambda: None)
    return main


@pytest.mark.parametrize("build", [command_registration, typer_registration, lambda: flare_app])
def test_flare_translate_works_under_either_registration(setup, tmp_path, build):
    output = tmp_path / "sub.jsonl"
    runner = CliRunner()
    result = runner.invoke(build(), ["translate", *args(setup, "train", output, "--limit", "2")])
    assert result.exit_code == 0, result.output
    assert len(output.read_text().splitlines()) == 2
    assert "--fallback-lang" in runner.invoke(build(), ["translate", "--help"]).output


def test_errors_are_one_line(setup, tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    runner = CliRunner()
    cases = {
        "no-such-org/no-such-model": "cannot load translation model",
        setup["model"]: "no language token for Toba Batak",
    }
    for model, message in cases.items():
        base = args(setup, "train", tmp_path / "x.jsonl")
        base[base.index("--model") + 1] = model
        base[base.index("--lang") + 1] = "bbc"
        result = runner.invoke(translate_cli.app, base)
        assert result.exit_code == 2
        last = result.output.strip().splitlines()[-1]  # after transformers' progress bars
        assert last.startswith("error: ") and message in last
        assert "Traceback" not in result.output
    result = runner.invoke(
        translate_cli.app, args(setup, "train", tmp_path / "x.jsonl", "--fallback-lang", "id")
    )
    assert result.exit_code == 0, result.output


def test_an_output_that_cannot_be_written_fails_before_translating(setup, tmp_path):
    # A directory as --output used to fail in os.replace after all the translating, with
    # a traceback and a stray temporary file.
    (tmp_path / "out").mkdir()
    result = CliRunner().invoke(
        translate_cli.app, args(setup, "train", tmp_path / "out", "--no-cache")
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith("error: output ")
    assert "is a directory" in result.output
    assert list(tmp_path.iterdir()) == [tmp_path / "out"]


@pytest.fixture(scope="module")
def llm(setup):
    return str(save_tiny_llm(setup["root"] / "llama"))


def llm_args(setup, llm, split, output, cache, *extra):
    base = args(setup, split, output, "--cache", str(cache), *extra)
    base[base.index("--model") + 1] = llm
    return base


def test_a_causal_lm_translates_with_a_prompt_and_its_cache(setup, llm, tmp_path):
    runner = CliRunner()
    cache = tmp_path / "llm-cache.jsonl"
    output = tmp_path / "jv.train.jsonl"
    result = runner.invoke(translate_cli.app, llm_args(setup, llm, "train", output, cache))
    assert result.exit_code == 0, result.output
    assert "wrote 3 of 3 examples" in result.output and "3 newly translated" in result.output
    provenance = json.loads((tmp_path / "jv.train.jsonl.provenance.json").read_text())
    settings = provenance["model"]["settings"]
    assert settings["backend"] == "llm" and settings["prompt"] == DEFAULT_PROMPT
    assert provenance["languages"]["to"]["token"] == "Javanese"

    again = runner.invoke(
        translate_cli.app,
        llm_args(setup, llm, "train", tmp_path / "again.jsonl", cache, "--backend", "llm"),
    )
    assert again.exit_code == 0, again.output
    assert "0 newly translated" in again.output

    prompt = tmp_path / "prompt.txt"
    prompt.write_text("{source}: {text}\n{target}:\n")
    changed = runner.invoke(
        translate_cli.app,
        llm_args(setup, llm, "train", tmp_path / "other.jsonl", cache, "--prompt-file", prompt),
    )
    assert changed.exit_code == 0, changed.output
    assert "0 hits, 3 newly translated" in changed.output
    provenance = json.loads((tmp_path / "other.jsonl.provenance.json").read_text())
    assert provenance["model"]["settings"]["prompt"] == "{source}: {text}\n{target}:"


def test_options_of_the_other_backend_are_one_line_errors(setup, llm, tmp_path):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("{source}: {text}\n{target}:")
    cases = [
        (llm, ["--fallback-lang", "id"], "drop --fallback-lang"),
        (llm, ["--num-beams", "4"], "drop --num-beams"),
        (llm, ["--backend", "gpt"], "--backend must be auto, seq2seq or llm, not 'gpt'"),
        (setup["model"], ["--prompt-file", str(prompt)], "is a seq2seq MT model"),
        (llm, ["--prompt-file", str(tmp_path / "none.txt")], "cannot read prompt file"),
        (llm, ["--backend", "seq2seq"], "cannot load translation model"),  # an override
    ]
    runner = CliRunner()
    for model, extra, message in cases:
        base = llm_args(setup, model, "train", tmp_path / "x.jsonl", tmp_path / "c.jsonl", *extra)
        result = runner.invoke(translate_cli.app, base)
        assert result.exit_code == 2, (extra, result.output)
        last = result.output.strip().splitlines()[-1]
        assert last.startswith("error: ") and message in last, (extra, last)
    assert not (tmp_path / "x.jsonl").exists()


def test_reference_translations_give_chrf(setup, tmp_path):
    reference = tmp_path / "english.test.csv"
    write_csv(reference, ENGLISH)
    output = tmp_path / "jv.test.jsonl"
    result = CliRunner().invoke(
        translate_cli.app, args(setup, "test", output, "--no-cache", "--reference", reference)
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in output.read_text().splitlines()]
    expected = chrf([r["source_text"] for r in records], [text for _, text, _ in ENGLISH])
    assert f"chrF = {expected.score:.2f} against {reference} (3 texts; nrefs:1|" in result.output

    write_csv(reference, ENGLISH[:2])
    result = CliRunner().invoke(
        translate_cli.app, args(setup, "test", output, "--no-cache", "--reference", reference)
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "error: the reference file has no text for example '3'"
    )
