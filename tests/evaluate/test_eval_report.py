"""Aggregation, Markdown tables, results.json and plots of an experiment grid."""

import json
import statistics
from pathlib import Path

import pytest
from matplotlib.image import imread

from flare_xlt.errors import FlareError
from flare_xlt.evaluate import (
    RunResult,
    aggregate,
    average_ranks,
    english_task_model_line,
    plot_heatmap,
    plot_results,
    read_results_json,
    to_markdown,
    write_results_json,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(method, language, seed, score, side="machine", metric="accuracy", **extra):
    return RunResult(method, language, seed, metric, score, 100, side, extra)


@pytest.fixture
def grid():
    """Two methods, two languages, three seeds; FLARE is better on both languages."""
    scores = {
        ("LoRA", "sw"): [60.0, 61.0, 65.0],
        ("LoRA", "ur"): [55.0, 55.0, 58.0],
        ("FLARE", "sw"): [80.0, 82.0, 84.0],
        ("FLARE", "ur"): [70.0, 71.0, 75.5],
    }
    sides = {"LoRA": "none", "FLARE": "machine"}
    return [
        run(method, lang, seed, score, side=sides[method], seconds=1.5)
        for (method, lang), values in scores.items()
        for seed, score in zip([1, 2, 3], values, strict=True)
    ]


def test_aggregate_mean_and_sample_std_over_three_seeds(grid):
    table = aggregate(grid)
    assert table.methods == ("LoRA", "FLARE")
    assert table.languages == ("sw", "ur")
    cell = table.cells[("FLARE", "sw")]
    assert cell.mean == 82.0
    assert cell.std == 2.0
    assert cell.seeds == (1, 2, 3)
    assert table.cells[("FLARE", "ur")].mean == pytest.approx(72.166666666)
    assert table.cells[("FLARE", "ur")].std == pytest.approx(statistics.stdev([70, 71, 75.5]))
    assert table.averages["FLARE"] == pytest.approx((82.0 + 72.1666666) / 2)
    assert table.avg_ranks == {"LoRA": 2.0, "FLARE": 1.0}


def test_aggregate_single_seed_has_no_std_and_keeps_given_order(grid):
    table = aggregate([r for r in grid if r.seed == 1], methods=["FLARE", "LoRA"])
    assert table.methods == ("FLARE", "LoRA")
    assert table.cells[("LoRA", "sw")].std is None
    assert not table.multi_seed


def test_average_ranks_share_ties():
    assert average_ranks([90.0, 80.0, 90.0, 70.0]) == [1.5, 3.0, 1.5, 4.0]
    assert average_ranks([5.0, 5.0, 5.0]) == [2.0, 2.0, 2.0]
    assert average_ranks([0.1 + 0.2, 0.3]) == [1.5, 1.5]  # float noise is a tie


def test_aggregate_ranks_with_ties():
    results = [
        run("A", "sw", 0, 70.0),
        run("B", "sw", 0, 70.0),
        run("C", "sw", 0, 60.0),
        run("A", "ur", 0, 50.0),
        run("B", "ur", 0, 40.0),
        run("C", "ur", 0, 50.0),
    ]
    table = aggregate(results)
    # sw: A 1.5, B 1.5, C 3; ur: A 1.5, B 3, C 1.5
    assert table.avg_ranks == {"A": 1.5, "B": 2.25, "C": 2.25}


def test_missing_language_drops_average_and_rank_uses_complete_languages():
    results = [run("A", "sw", 0, 70.0), run("B", "sw", 0, 60.0), run("A", "ur", 0, 10.0)]
    table = aggregate(results)
    assert table.averages == {"A": 40.0, "B": None}
    assert table.avg_ranks == {"A": 1.0, "B": 2.0}
    markdown = to_markdown(table)
    assert "| B | 60.00 | – | – | 2.00 |" in markdown


def test_aggregate_selects_one_metric():
    results = [
        run("A", "sw", 0, 40.0, metric="exact_match"),
        run("A", "sw", 0, 55.0, metric="f1"),
    ]
    with pytest.raises(FlareError, match="pass metric="):
        aggregate(results)
    assert aggregate(results, metric="f1").cells[("A", "sw")].mean == 55.0
    with pytest.raises(FlareError, match="no results for metric"):
        aggregate(results, metric="accuracy")


@pytest.mark.parametrize(
    ("results", "message"),
    [
        ([], "no results"),
        ([run("A", "sw", 0, 1.0), run("A", "sw", 0, 2.0)], "seed twice"),
        ([run("A", "sw", 0, 1.0, side="human"), run("A", "sw", 1, 2.0)], "mixes English sides"),
    ],
)
def test_aggregate_rejects_inconsistent_results(results, message):
    with pytest.raises(FlareError, match=message):
        aggregate(results)


def test_aggregate_rejects_unknown_method_order(grid):
    with pytest.raises(FlareError, match="no results for methods"):
        aggregate(grid, methods=["FLARE", "X-Mixup"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"english_side": "google"}, "english_side"),
        ({"score": 0.75e3}, "percentage"),
        ({"score": float("nan")}, "percentage"),
        ({"n_examples": 0}, "n_examples"),
    ],
)
def test_run_result_validates(kwargs, message):
    values = {
        "method": "A",
        "language": "sw",
        "seed": 0,
        "metric": "accuracy",
        "score": 50.0,
        "n_examples": 10,
        "english_side": "machine",
    }
    with pytest.raises(FlareError, match=message):
        RunResult(**{**values, **kwargs})


def test_markdown_bolds_best_and_states_english_side(grid):
    markdown = to_markdown(aggregate(grid), "XNLI, Llama 3.1 8B", "English by NLLB-200 3.3B.")
    lines = markdown.splitlines()
    assert lines[0] == "### XNLI, Llama 3.1 8B"
    assert "| Method | sw | ur | Avg | Avg rank |" in lines
    flare = next(line for line in lines if line.startswith("| FLARE"))
    assert "**82.00 ± 2.00**" in flare
    assert "**1.00**" in flare
    lora = next(line for line in lines if line.startswith("| LoRA"))
    assert "62.00 ± 2.65" in lora and "**" not in lora
    assert lines[-1] == (
        "English at test time: no English input for LoRA; "
        "machine translation (realistic setting) for FLARE. English by NLLB-200 3.3B."
    )
    assert "mean ± sample std over seeds 1, 2, 3" in markdown


def test_markdown_names_the_cells_with_fewer_seeds(grid):
    # A three-seed table whose untrained baseline ran once printed that baseline's single
    # score like a mean, with nothing saying so.
    partial = [r for r in grid if not (r.method == "LoRA" and r.language == "ur" and r.seed == 3)]
    partial += [run("zero_shot", lang, 1, 40.0, side="none") for lang in ("sw", "ur")]
    lines = to_markdown(aggregate(partial)).splitlines()
    assert lines[-2] == "Fewer seeds: LoRA on ur (seeds 1, 2); zero_shot (seed 1)."
    assert "Fewer seeds" not in to_markdown(aggregate(grid))


def test_markdown_single_seed_ties_and_oracle():
    results = [run("A", "sw", 0, 70.0, side="human"), run("B", "sw", 0, 70.0)]
    markdown = to_markdown(aggregate(results))
    assert "±" not in markdown
    assert "Accuracy (%), seed 0; best per column" in markdown
    assert "| A | **70.00** | **70.00** | **1.50** |" in markdown
    assert "| B | **70.00** | **70.00** | **1.50** |" in markdown
    assert "human translation (oracle) for A" in markdown
    assert "machine translation (realistic setting) for B" in markdown


@pytest.mark.parametrize(
    ("record", "line"),
    [
        (
            {"english_validation": {"accuracy": 57.126}, "train_steps": 520, "best_step": 312},
            "English task model (stage 1, best of 520 steps at step 312): "
            "Accuracy 57.13 % on English validation.",
        ),
        (
            {"english_validation": {"macro_f1": 86.888}, "train_steps": 126, "best_step": 126},
            "English task model (stage 1, 126 steps): Macro-F1 86.89 % on English validation.",
        ),
        (  # a record written before best_step was kept
            {"english_validation": {"exact_match": 12.0}, "train_steps": 76},
            "English task model (stage 1, 76 steps): Exact match 12.00 % on English validation.",
        ),
        ({}, "English task model (stage 1): no score recorded on English validation."),
    ],
)
def test_english_task_model_line_reads_the_stage1_record(record, line):
    assert english_task_model_line(record) == line


def test_markdown_adds_notes_under_the_english_side():
    markdown = to_markdown(aggregate([run("A", "sw", 0, 70.0)]), notes=["First.", "Second."])
    assert markdown.rstrip("\n").splitlines()[-3:] == [
        "English at test time: machine translation (realistic setting) for A.",
        "First.",
        "Second.",
    ]


def test_results_json_round_trip(tmp_path, grid):
    path = tmp_path / "runs" / "results.json"
    config = {"task": "xnli", "output_dir": Path("/tmp/out"), "fusion": "add_relu"}
    provenance = {"xnli": {"source": "shared/data/xnli", "sha256": "abc"}}
    written = write_results_json(path, grid, config, provenance, {"total_s": 12.5})
    assert written == path
    assert read_results_json(path) == grid
    document = json.loads(path.read_text())
    assert document["config"]["output_dir"] == "/tmp/out"
    assert document["seeds"] == [1, 2, 3]
    assert document["provenance"] == provenance
    assert document["timings"] == {"total_s": 12.5}
    versions = document["versions"]
    assert {"torch", "transformers", "peft", "accelerate", "python", "platform"} <= set(versions)
    assert versions["flare-xlt"] is not None and versions["python"].count(".") == 2
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]  # no temp file left


def test_results_json_failed_write_keeps_old_file(tmp_path, grid):
    path = tmp_path / "results.json"
    write_results_json(path, grid[:1], {}, {}, {})
    with pytest.raises(FlareError, match="not JSON-serialisable"):
        write_results_json(path, grid, {"model": object()}, {}, {})
    assert read_results_json(path) == grid[:1]
    assert len(list(tmp_path.iterdir())) == 1


def test_read_results_json_errors(tmp_path):
    with pytest.raises(FlareError, match="no results file"):
        read_results_json(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(FlareError, match="not valid JSON"):
        read_results_json(bad)
    bad.write_text('{"results": []}')
    with pytest.raises(FlareError, match="not a flare-xlt results file"):
        read_results_json(bad)


def assert_png(path, min_bytes=15_000):
    data = Path(path).read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > min_bytes
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 600


def test_plot_results_writes_png(tmp_path, grid):
    grid = [*grid, run("Zero-shot", "sw", 1, 40.0, side="none")]  # Zero-shot lacks ur
    path = plot_results(aggregate(grid), tmp_path / "plots" / "xnli.png", "XNLI, Llama 3.1 8B")
    assert_png(path)


def test_plot_heatmap_writes_png(tmp_path, grid):
    path = plot_heatmap(aggregate(grid), tmp_path / "heat.png", "XNLI, Llama 3.1 8B")
    assert_png(path, min_bytes=10_000)
