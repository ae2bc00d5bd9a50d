"""The experiment runner end to end on real NusaX files with tiny random models (no downloads)."""

import csv
import dataclasses
import json
import shutil
import subprocess
import sys

import pytest
import torch
import transformers as tf
from recipe_tokenizer import word_tokenizer
from tiny_models import tiny_config

from flare_xlt.errors import FlareError
from flare_xlt.evaluate import read_results_json
from flare_xlt.paths import default_data_dir
from flare_xlt.recipes import experiment, load_config, run_experiment
from flare_xlt.recipes.demo import DEMO_METHODS
from flare_xlt.recipes.stage1 import run_stage1
from flare_xlt.recipes.stage2 import (
    Cell,
    evaluate_language,
    load_cell_results,
    prepare_method,
    run_cell,
)

pytestmark = pytest.mark.real_data
LANGUAGES = ("javanese", "toba_batak")


def nusax_texts(data_dir, languages=("english", *LANGUAGES)):
    texts = []
    for language in languages:
        with open(data_dir / "nusax" / "sentiment" / language / "train.csv", newline="") as f:
            texts += [row["text"] for row in csv.DictReader(f)][:50]
    return texts + ["Sentiment: negative neutral positive"] * 100  # keep the label words


@pytest.fixture(scope="module")
def tiny_backbones(tmp_path_factory):
    """A tiny Llama (the backbone) and a tiny BERT (the latent encoder), saved as HF dirs."""
    data_dir = default_data_dir()
    if data_dir is None:
        pytest.skip("no dataset directory (set FLARE_DATA_DIR)")
    root = tmp_path_factory.mktemp("tiny")
    tokenizer = word_tokenizer(nusax_texts(data_dir), vocab_size=400)
    torch.manual_seed(0)
    llama = tf.LlamaForCausalLM(tiny_config("llama", vocab_size=len(tokenizer), bos_token_id=2))
    llama.save_pretrained(root / "llama")
    tokenizer.save_pretrained(root / "llama")
    bert_tokenizer = word_tokenizer(nusax_texts(data_dir), padding_side="right", vocab_size=300)
    bert = tf.BertModel(
        tiny_config("bert", vocab_size=len(bert_tokenizer), max_position_embeddings=128)
    )
    bert.save_pretrained(root / "bert")
    bert_tokenizer.save_pretrained(root / "bert")
    torch.manual_seed(0)
    mt5 = tf.MT5ForConditionalGeneration(
        tf.MT5Config(
            vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
            pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
        )
    )  # fmt: skip
    mt5.save_pretrained(root / "mt5")
    tokenizer.save_pretrained(root / "mt5")
    return root


def test_every_method_runs_resumes_and_reports(tiny_backbones, tmp_path):
    methods = [*DEMO_METHODS, "x_mixup"]
    overrides = [
        f"backbone={tiny_backbones / 'llama'}",
        f"latent_encoder={tiny_backbones / 'bert'}",
        f"output_dir={tmp_path / 'run'}",
        f"methods=[{', '.join(methods)}]",
        f"languages=[{', '.join(LANGUAGES)}]",
        "data.max_train_examples=16",
        "data.max_validation_examples=8",
        "data.max_test_examples=12",
        "data.max_length=48",
        "stage1.max_steps=2",
        "stage2.max_steps=2",
        "stage1.batch_size=4",
        "stage2.batch_size=4",
    ]
    config = load_config(overrides=overrides)
    report = run_experiment(config, progress=False)
    root = tmp_path / "run"
    results = read_results_json(root / "results.json")
    assert {(r.method, r.language) for r in results} == {
        (m, lang) for m in methods for lang in LANGUAGES
    }
    assert all(r.n_examples == 12 and 0 <= r.score <= 100 for r in results)
    sides = {r.method: r.english_side for r in results}
    assert sides["flare"] == sides["x_mixup"] == "human"
    assert sides["lora"] == sides["flare_mt"] == "none"
    payload = json.loads((root / "results.json").read_text())
    assert payload["config"]["backbone"].endswith("llama")
    markdown = (root / "results.md").read_text()
    assert all(method in markdown for method in methods) and "English" in markdown
    stage1 = json.loads((root / "stage1" / "stage1.json").read_text())
    score = stage1["english_validation"]["macro_f1"]
    assert stage1["train_steps"] == 2 and stage1["best_step"] in (1, 2)
    assert "English task model (stage 1, " in markdown and f"Macro-F1 {score:.2f} %" in markdown
    assert (root / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        root / "cells" / "flare" / "javanese" / "seed42" / "adapter" / "flare_config.json"
    ).is_file()
    assert report["markdown"].rstrip("\n") == markdown.rstrip("\n")

    # a rerun finds every cell done and rewrites the same report without training
    stamp = (root / "cells" / "flare" / "javanese" / "seed42" / "cell.json").stat().st_mtime_ns
    run_experiment(config, progress=False)
    assert (
        root / "cells" / "flare" / "javanese" / "seed42" / "cell.json"
    ).stat().st_mtime_ns == stamp
    assert read_results_json(root / "results.json") == results
    # resumed work reports the timings recorded when it was computed
    assert json.loads((root / "results.json").read_text())["timings"] == payload["timings"]
    assert "stage1_train_seconds" in payload["timings"]
    assert payload["timings"]["cells"].keys() == {
        f"{m}/{lang}/seed42" for m in methods for lang in LANGUAGES
    }

    # a saved adapter, loaded again as `flare evaluate --adapter` does, scores the same
    for method in ("flare", "x_mixup"):
        cell = root / "cells" / method / "javanese" / "seed42"
        setup = prepare_method(config, method, root / "stage1" / "model", cell / "adapter")
        again = evaluate_language(config, setup, "javanese", 42, progress=False)
        before = next(r for r in results if (r.method, r.language) == (method, "javanese"))
        assert again.score == before.score
        if method == "flare":  # test examples are scored once: their states are not cached
            assert setup.model.source_cache is None
    flare_adapter = root / "cells" / "flare" / "javanese" / "seed42" / "adapter"
    xmixup_adapter = root / "cells" / "x_mixup" / "javanese" / "seed42" / "adapter"
    for adapter, wrong_method, trained_for in (
        (flare_adapter, "lora", "flare"),
        (flare_adapter, "flare_mt", "flare"),
        (xmixup_adapter, "lora", "x_mixup"),  # its LoRA part alone would load silently
        (xmixup_adapter, "flare", "x_mixup"),
    ):  # named before the adapter is loaded
        with pytest.raises(FlareError, match=f"holds an adapter for {trained_for}, not for"):
            prepare_method(config, wrong_method, root / "stage1" / "model", adapter)


def test_joint_multi_target_training(tiny_backbones, tmp_path):
    config = load_config(
        overrides=[
            f"backbone={tiny_backbones / 'llama'}",
            f"output_dir={tmp_path / 'run'}",
            "methods=[flare]",
            f"languages=[{', '.join(LANGUAGES)}]",
            "joint_languages=true",
            "data.max_train_examples=8",
            "data.max_validation_examples=4",
            "data.max_test_examples=6",
            "stage1.max_steps=1",
            "stage2.max_steps=2",
        ]
    )
    run_experiment(config, progress=False)
    results = read_results_json(tmp_path / "run" / "results.json")
    assert sorted((r.method, r.language) for r in results) == [
        ("flare (joint)", "javanese"),
        ("flare (joint)", "toba_batak"),
    ]
    assert (tmp_path / "run" / "cells" / "flare" / "javanese+toba_batak" / "seed42").is_dir()


def test_a_stopped_grid_leaves_a_table_of_complete_rows(tiny_backbones, tmp_path, monkeypatch):
    config = load_config(
        overrides=[
            f"backbone={tiny_backbones / 'llama'}",
            f"output_dir={tmp_path / 'run'}",
            "methods=[zero_shot, lora]",
            f"languages=[{', '.join(LANGUAGES)}]",
            "data.max_train_examples=8",
            "data.max_validation_examples=4",
            "data.max_test_examples=6",
            "stage1.max_steps=1",
            "stage2.max_steps=1",
        ]
    )
    finished = []

    def run_cell_then_stop(config, cell, stage1_dir, progress):
        if len(finished) == 2:
            raise KeyboardInterrupt  # the user stops the grid after the first language
        finished.append(cell.name)
        return run_cell(config, cell, stage1_dir, progress)

    monkeypatch.setattr(experiment, "run_cell", run_cell_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, progress=False)
    assert finished == ["zero_shot/javanese/seed42", "lora/javanese/seed42"]
    results = read_results_json(tmp_path / "run" / "results.json")
    assert sorted((r.method, r.language) for r in results) == [
        ("lora", "javanese"),
        ("zero_shot", "javanese"),
    ]
    markdown = (tmp_path / "run" / "results.md").read_text()
    assert "javanese" in markdown and "toba_batak" not in markdown


def test_combine_reports_labels_each_run(tiny_backbones, tmp_path):
    from flare_xlt.recipes import combine_reports

    paths = []
    for fusion in ("add", "mul"):
        config = load_config(
            overrides=[
                f"backbone={tiny_backbones / 'llama'}",
                f"output_dir={tmp_path / fusion}",
                "methods=[lora, flare]" if fusion == "add" else "methods=[flare]",
                "languages=[javanese]",
                f"adapter.fusion={fusion}",
                "data.max_train_examples=4",
                "data.max_validation_examples=4",
                "data.max_test_examples=4",
                "stage1.max_steps=1",
                "stage2.max_steps=1",
            ]
        )
        run_experiment(config, progress=False)
        paths.append(tmp_path / fusion / "results.json")
    markdown = combine_reports(paths, tmp_path / "combined", label_key="adapter.fusion")
    assert "flare [fusion=add]" in markdown and "flare [fusion=mul]" in markdown
    combined = read_results_json(tmp_path / "combined" / "results.json")
    # lora comes from one run only: a baseline row, not labelled with that run's fusion
    assert sorted(r.method for r in combined) == [
        "flare [fusion=add]",
        "flare [fusion=mul]",
        "lora",
    ]


def test_combine_reports_names_a_default_alignment_as_it_was_resolved(tiny_backbones, tmp_path):
    """A grid that leaves ``adapter.alignment`` to its default is labelled by the alignment its
    cells ran with (``end`` for FLARE on a causal LM), not by the unset value ``None``."""
    from flare_xlt.recipes import combine_reports

    paths = []
    for alignment in ("token_index", None):
        folder = tmp_path / str(alignment)
        overrides = [*two_step_grid(tiny_backbones, folder), "methods=[flare]"]
        if alignment is not None:
            overrides.append(f"adapter.alignment={alignment}")
        run_experiment(load_config(overrides=overrides), progress=False)
        paths.append(folder / "run" / "results.json")
    combine_reports(paths, tmp_path / "combined", label_key="adapter.alignment")
    combined = read_results_json(tmp_path / "combined" / "results.json")
    assert sorted(r.method for r in combined) == [
        "flare [alignment=end]",
        "flare [alignment=token_index]",
    ]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["train", "--method", "flair"], "unknown method 'flair'"),
        (["evaluate", "--method", "flare"], "method 'flare' trains an adapter: pass --adapter DIR"),
        (["evaluate", "--method", "lora", "--adapter", "nowhere"], "flare_config.json not found"),
    ],
)
def test_cli_checks_the_method_before_training_stage1(tiny_backbones, tmp_path, command, message):
    run = tmp_path / "run"
    args = [*command, "--lang", "javanese", "--set", f"backbone={tiny_backbones / 'llama'}"]
    done = subprocess.run(
        [sys.executable, "-m", "flare_xlt.cli", *args, "--set", f"output_dir={run}", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert message in done.stderr.strip().splitlines()[-1]
    assert not run.exists()  # nothing was trained first


@pytest.mark.slow
def test_cli_train_under_torchrun_runs_real_ddp(tiny_backbones, tmp_path):
    """``torchrun -m flare_xlt.cli train`` trains one FLARE cell with 2 processes (gloo)."""
    import os

    output = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "flare_xlt.cli",
        "train",
        "--method",
        "flare",
        "--lang",
        "javanese",
        "--quiet",
        "--set",
        f"backbone={tiny_backbones / 'llama'}",
        "--set",
        f"output_dir={output}",
        "--set",
        "data.max_train_examples=16",
        "--set",
        "data.max_validation_examples=4",
        "--set",
        "data.max_test_examples=4",
        "--set",
        "stage1.max_steps=2",
        "--set",
        "stage2.max_steps=2",
        "--set",
        "stage1.batch_size=4",
        "--set",
        "stage2.batch_size=4",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    cell = output / "cells" / "flare" / "javanese" / "seed42"
    state = json.loads(
        next((cell / "train" / "checkpoints").glob("step-*/trainer_state.json")).read_text()
    )
    assert state["num_processes"] == 2
    assert (cell / "cell.json").is_file() and (cell / "adapter" / "flare_config.json").is_file()
    assert run.stdout.count("flare javanese: macro_f1 =") == 2  # both ranks evaluated and agree
    scores = {line for line in run.stdout.splitlines() if line.startswith("flare javanese")}
    assert len(scores) == 1


def test_own_parallel_files_run_with_no_code_change(tiny_backbones, tmp_path):
    """A user's JSONL files ({language}.{split}.jsonl) go through the same runner."""
    labels = ["negative", "neutral", "positive"]
    data = tmp_path / "data"
    data.mkdir()
    for split, size in (("train", 12), ("validation", 4), ("test", 6)):
        rows = [
            {
                "id": f"{split}-{i}",
                "source_text": f"I like this film number {i}",
                "target_text": f"aku seneng film iki {i}",
                "label": labels[i % 3],
            }
            for i in range(size)
        ]
        (data / f"javanese.{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    config = load_config(
        overrides=[
            "task=my_sentiment",
            f"data.files={data}/{{language}}.{{split}}.jsonl",
            f"data.label_names=[{', '.join(labels)}]",
            "data.metric=macro_f1",
            f"backbone={tiny_backbones / 'llama'}",
            f"output_dir={tmp_path / 'run'}",
            "methods=[lora, flare]",
            "languages=[javanese]",
            "stage1.max_steps=1",
            "stage2.max_steps=1",
        ]
    )
    run_experiment(config, progress=False)
    results = read_results_json(tmp_path / "run" / "results.json")
    assert {r.method for r in results} == {"lora", "flare"}
    assert all(r.metric == "macro_f1" and r.n_examples == 6 for r in results)


def test_own_files_need_a_split_placeholder_and_labels():
    with pytest.raises(FlareError, match=r"data.files needs a \{split\} placeholder"):
        load_config(overrides=["task=mine", "data.files=data.jsonl", "data.label_names=[a, b]"])


def test_finished_cells_are_not_reused_under_other_settings(tiny_backbones, tmp_path):
    overrides = [
        f"backbone={tiny_backbones / 'llama'}",
        f"output_dir={tmp_path / 'run'}",
        "methods=[zero_shot]",
        "languages=[javanese]",
        "data.max_train_examples=4",
        "data.max_validation_examples=4",
        "data.max_test_examples=4",
        "stage1.max_steps=1",
    ]
    run_experiment(load_config(overrides=overrides), progress=False)
    kept = [o for o in overrides if not o.startswith("data.max_test_examples")]
    changed = load_config(overrides=[*kept, "data.max_test_examples=6"])
    with pytest.raises(
        FlareError, match=r"produced with different settings \(data\.max_test_examples\)"
    ):
        run_experiment(changed, progress=False)
    # settings a zero_shot cell cannot depend on do not make it stale
    unrelated = load_config(overrides=[*overrides, "source_cache=false", "latent_encoder=other"])
    run_experiment(unrelated, progress=False)
    changed_stage1 = load_config(overrides=[*overrides, "stage1.learning_rate=0.1"])
    with pytest.raises(FlareError, match="English task model trained with other settings"):
        run_experiment(changed_stage1, progress=False)
    # found by review: stage 1 trains LoRA on target_modules but did not record them
    other_modules = load_config(overrides=[*overrides, "adapter.target_modules=[q_proj]"])
    with pytest.raises(FlareError, match=r"other settings \(adapter\.target_modules\)"):
        run_experiment(other_modules, progress=False)


def two_step_grid(tiny_backbones, tmp_path) -> list[str]:
    """Overrides for zero_shot and lora on javanese, one training step each, 4 examples."""
    return [
        f"backbone={tiny_backbones / 'llama'}",
        f"output_dir={tmp_path / 'run'}",
        "methods=[zero_shot, lora]",
        "languages=[javanese]",
        "data.max_train_examples=4",
        "data.max_validation_examples=4",
        "data.max_test_examples=4",
        "stage1.max_steps=1",
        "stage2.max_steps=1",
    ]


def as_written_before_record_schemas(path) -> None:
    """Rewrite a stage1.json or cell.json record the way flare-xlt wrote it before schemas."""
    record = json.loads(path.read_text())
    del record["schema"], record["kind"]
    settings = record["settings"]
    if path.name == "stage1.json":
        assert settings["adapter"].pop("target_modules") is None
    else:
        assert settings["adapter"].pop("fusion_modules", None) is None
        assert settings["data"].pop("machine_english") is None
        del record["data"]  # and cells carried no data fingerprints
    assert settings.pop("quantization") is None  # all of these were left out while None
    path.write_text(json.dumps(record))


def test_records_of_an_older_flare_xlt_are_reused_after_upgrade_records(tiny_backbones, tmp_path):
    from typer.testing import CliRunner

    from flare_xlt.cli import app

    config = load_config(overrides=two_step_grid(tiny_backbones, tmp_path))
    run_experiment(config, progress=False)
    results = read_results_json(config.root / "results.json")
    records = [config.stage1_root / "stage1.json", *sorted(config.root.rglob("cell.json"))]
    assert len(records) == 3
    for path in records:
        as_written_before_record_schemas(path)
    with pytest.raises(FlareError) as caught:
        run_experiment(config, progress=False)
    message = str(caught.value)
    assert "\n" not in message and "stage1.json was written by an older flare-xlt" in message
    assert "`flare upgrade-records DIR`" in message
    for method in ("zero_shot", "lora"):
        with pytest.raises(FlareError, match=r"cell\.json was written by an older flare-xlt"):
            load_cell_results(config, Cell(method, ("javanese",), 42))
    outcome = CliRunner().invoke(app, ["upgrade-records", str(config.root)])
    assert outcome.exit_code == 0 and "3 record(s) upgraded" in outcome.output, outcome.output
    stamps = {path: path.stat().st_mtime_ns for path in records}
    run_experiment(config, progress=False)  # nothing is computed again
    assert {path: path.stat().st_mtime_ns for path in records} == stamps
    assert read_results_json(config.root / "results.json") == results


def test_grids_sharing_cells_keep_their_own_tables(tiny_backbones, tmp_path, monkeypatch):
    # Two grids in one output_dir (one language, then a seeds table on it) used to
    # overwrite each other's results.json/md/png and config.json.
    overrides = [
        f"backbone={tiny_backbones / 'llama'}",
        f"output_dir={tmp_path / 'run'}",
        "methods=[zero_shot]",
        "data.max_train_examples=4",
        "data.max_validation_examples=4",
        "data.max_test_examples=4",
        "stage1.max_steps=1",
    ]
    run_experiment(load_config(overrides=[*overrides, "languages=[javanese]"]), progress=False)
    both = [*overrides, "languages=[javanese, toba_batak]", f"report_dir={tmp_path / 'both'}"]
    run_experiment(load_config(overrides=both), progress=False)
    first = json.loads((tmp_path / "run" / "results.json").read_text())
    second = json.loads((tmp_path / "both" / "results.json").read_text())
    assert {r["language"] for r in first["results"]} == {"javanese"}
    assert {r["language"] for r in second["results"]} == {"javanese", "toba_batak"}
    javanese, toba_batak = "zero_shot/javanese/seed42", "zero_shot/toba_batak/seed42"
    assert list(second["timings"]["cells"]) == [javanese, toba_batak]
    # javanese is reused, with the time recorded when the first grid computed it
    assert second["timings"]["cells"][javanese] == first["timings"]["cells"][javanese]
    assert (tmp_path / "both" / "results.md").is_file()
    assert json.loads((tmp_path / "both" / "config.json").read_text())["report_dir"]
    assert not (tmp_path / "both" / "cells").exists()
    # --report-only tabulates the finished cells of a bigger grid and trains nothing
    more = [*both, "methods=[zero_shot, lora]", f"report_dir={tmp_path / 'finished'}"]
    report = run_experiment(load_config(overrides=more), progress=False, report_only=True)
    assert report["table"].methods == ("zero_shot",)
    assert not (tmp_path / "run" / "cells" / "lora").exists()
    # under torchrun every rank builds the table, but only rank 0 writes it (found by review)
    monkeypatch.setenv("RANK", "1")
    other_rank = [*more, f"report_dir={tmp_path / 'rank1'}"]
    report = run_experiment(load_config(overrides=other_rank), progress=False, report_only=True)
    assert report["table"].methods == ("zero_shot",) and not (tmp_path / "rank1").exists()
    monkeypatch.delenv("RANK")
    empty = load_config(overrides=[*overrides, f"output_dir={tmp_path / 'empty'}"])
    with pytest.raises(FlareError, match="no finished cell of this grid"):
        run_experiment(empty, progress=False, report_only=True)
    assert not (tmp_path / "empty").exists()  # a failed report leaves no config.json behind
    shutil.rmtree(tmp_path / "run" / "stage1")
    with pytest.raises(FlareError, match=r"stage1\.json is missing: the report records"):
        run_experiment(load_config(overrides=more), progress=False, report_only=True)


def test_resumed_and_report_only_runs_report_the_timings_the_records_hold(tiny_backbones, tmp_path):
    # Found on regenerated tables: --report-only wrote empty timings, and a resumed grid
    # dropped stage 1's and the finished cells' (or timed them as the ms it took to skip).
    config = load_config(overrides=two_step_grid(tiny_backbones, tmp_path))
    root = tmp_path / "run"

    def timings() -> dict:
        return json.loads((root / "results.json").read_text())["timings"]

    run_experiment(config, progress=False)
    stage1 = json.loads((root / "stage1" / "stage1.json").read_text())
    cells = {
        name: json.loads((root / "cells" / name / "cell.json").read_text())["results"][0]["extra"]
        for name in ("zero_shot/javanese/seed42", "lora/javanese/seed42")
    }
    assert timings() == {
        "stage1_train_seconds": stage1["train_seconds"],
        "cells": {
            "zero_shot/javanese/seed42": {
                "eval_seconds": cells["zero_shot/javanese/seed42"]["eval_seconds"]
            },  # it trains nothing: no train_seconds reported
            "lora/javanese/seed42": {
                "train_seconds": cells["lora/javanese/seed42"]["train_seconds"],
                "eval_seconds": cells["lora/javanese/seed42"]["eval_seconds"],
            },
        },
    }
    recorded = timings()
    run_experiment(config, progress=False)  # resumed: everything is done
    assert timings() == recorded
    run_experiment(config, progress=False, report_only=True)
    assert timings() == recorded


def test_a_language_the_task_lacks_fails_before_any_training(tiny_backbones, tmp_path):
    config = load_config(
        overrides=[
            f"backbone={tiny_backbones / 'llama'}",
            f"output_dir={tmp_path / 'run'}",
            "languages=[javanese, swahili]",
        ]
    )
    with pytest.raises(FlareError, match=r"NusaX-senti has no Swahili"):
        run_experiment(config, progress=False)
    assert not (tmp_path / "run" / "stage1").exists()


def one_step_stage1_config(tiny_backbones, tmp_path):
    """The tiny Llama with a one-step English task model on 4 examples."""
    return load_config(
        overrides=[
            f"backbone={tiny_backbones / 'llama'}",
            f"output_dir={tmp_path / 'run'}",
            "data.max_train_examples=4",
            "data.max_validation_examples=4",
            "stage1.max_steps=1",
        ]
    )


def test_a_recorded_stage1_whose_model_is_gone_names_the_fix(tiny_backbones, tmp_path):
    # Found on a fresh checkout: stage1.json is committed, its model folder is git-ignored,
    # and the runner "reused" a model that was not there.
    config = one_step_stage1_config(tiny_backbones, tmp_path)
    model_dir = run_stage1(config, progress=False)
    shutil.rmtree(model_dir)
    with pytest.raises(FlareError, match=r"stage1\.json records .* is missing; restore it"):
        run_stage1(config, progress=False)


def test_stage1_is_shared_by_languages_with_the_same_english_side(tiny_backbones, tmp_path):
    # `flare train --lang sundanese --config X` overrides languages=[sundanese]: the English
    # task model trained from the javanese pairs (the same English texts) must be reused.
    config = one_step_stage1_config(tiny_backbones, tmp_path)
    model_dir = run_stage1(config, progress=False)
    for language in ("sundanese", "toba_batak"):
        other = dataclasses.replace(config, languages=[language, "javanese"])
        assert run_stage1(other, progress=False) == model_dir
    fewer = dataclasses.replace(config, data=dataclasses.replace(config.data, max_train_examples=3))
    with pytest.raises(FlareError, match=r"trained with other settings \(english_data\.train\)"):
        run_stage1(fewer, progress=False)


def test_a_fresh_adapter_is_seeded_by_its_cell_not_by_what_ran_before(tiny_backbones, tmp_path):
    # Found by the e5 ablation: the first cell of a process started from other LoRA A
    # weights than the same cell run after other cells, so results depended on run order.
    config = one_step_stage1_config(tiny_backbones, tmp_path)
    stage1_dir = run_stage1(config, progress=False)

    def initial_lora_a(unrelated_draws: int, seed: int) -> list[torch.Tensor]:
        torch.rand(unrelated_draws)  # whatever earlier cells consumed
        model = prepare_method(config, "flare", stage1_dir, seed=seed).model
        return [p.detach().clone() for n, p in model.named_parameters() if "lora_A" in n]

    first, later = initial_lora_a(1, seed=42), initial_lora_a(1000, seed=42)
    assert all(torch.equal(a, b) for a, b in zip(first, later, strict=True))
    assert not torch.equal(first[0], initial_lora_a(0, seed=43)[0])


def one_step_grid(backbone, tmp_path, methods: str):
    """A javanese grid of ``methods`` on ``backbone``: 4 examples a split, one step a stage."""
    return load_config(
        overrides=[
            f"backbone={backbone}",
            f"output_dir={tmp_path / 'run'}",
            f"methods=[{methods}]",
            "data.max_train_examples=4",
            "data.max_validation_examples=4",
            "data.max_test_examples=4",
            "stage1.max_steps=1",
            "stage2.max_steps=1",
        ]
    )


def test_a_4bit_grid_trains_stage1_and_flare_and_records_the_quantization(tiny_backbones, tmp_path):
    pytest.importorskip("bitsandbytes")
    config = one_step_grid(tiny_backbones / "llama", tmp_path, "flare")
    config = load_config(base=config.to_dict(), overrides=["quantization.load_in_4bit=true"])
    run_experiment(config, progress=False)
    results = read_results_json(config.root / "results.json")
    assert [r.method for r in results] == ["flare"]
    stage1 = json.loads((config.stage1_root / "stage1.json").read_text())
    assert stage1["settings"]["quantization"]["quant_type"] == "nf4"
    merged = json.loads((config.stage1_root / "model" / "config.json").read_text())
    assert merged["quantization_config"]["load_in_4bit"]  # requantized after the merge
    cell = next((config.root / "cells").rglob("cell.json"))
    assert json.loads(cell.read_text())["settings"]["quantization"]["load_in_4bit"]


def test_an_encoder_decoder_backbone_scores_label_words_at_the_decoders_first_step(
    tiny_backbones, tmp_path
):
    config = one_step_grid(tiny_backbones / "mt5", tmp_path, "zero_shot, lora, flare")
    run_experiment(config, progress=False)
    results = read_results_json(config.root / "results.json")
    assert {r.method for r in results} == {"zero_shot", "lora", "flare"}
    setup = prepare_method(config, "flare", config.stage1_root / "model")
    assert setup.scorer.seq2seq and setup.model.flare_config.alignment == "token_index"
