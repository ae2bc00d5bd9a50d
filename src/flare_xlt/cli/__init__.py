"""The ``flare`` command line: each subcommand maps to one plain function of the library."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from flare_xlt.cli import models, translate
from flare_xlt.errors import FlareError

app = typer.Typer(
    help="FLARE: cross-lingual transfer by language fusion inside LoRA adapters.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(models.app, name="models")
app.command("translate")(translate.translate)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Experiment YAML config.")
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config value, e.g. --set stage2.learning_rate=1e-4."),
]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Dataset directory (default: FLARE_DATA_DIR).")
]
QuietOption = Annotated[bool, typer.Option("--quiet", help="No progress bars.")]
TargetOnlyOption = Annotated[
    bool,
    typer.Option(
        "--target-only", help="Run a FLARE adapter on the target text alone (no English)."
    ),
]


def _paths(**paths: Path | None) -> dict[str, str]:
    """Path options as exact config values (``data_dir`` -> ``data.data_dir``), never YAML."""
    keys = {"data_dir": "data.data_dir", "output_dir": "output_dir"}
    return {keys[name]: str(path) for name, path in paths.items() if path is not None}


def _one_cell(method: str, lang: str) -> list[str]:
    """Overrides that make the config one method and one language, checked before any work."""
    return [f"methods=[{method}]", f"languages=[{lang}]"]


@app.command()
def experiment(
    config: Annotated[Path, typer.Argument(help="Experiment YAML config.")],
    set_: SetOption = None,
    data_dir: DataDirOption = None,
    quiet: QuietOption = False,
    report_only: Annotated[
        bool, typer.Option("--report-only", help="Train nothing; tabulate the finished cells.")
    ] = False,
) -> None:
    """Run (or resume) a grid of methods x languages x seeds and write the report."""
    from flare_xlt.recipes import load_config, run_experiment

    settings = load_config(config, set_, values=_paths(data_dir=data_dir))
    report = run_experiment(settings, progress=not quiet, report_only=report_only)
    typer.echo(report["markdown"])
    typer.echo(f"\nwrote {report['root']}/results.json, results.md and results.png")


@app.command()
def train(
    method: Annotated[str, typer.Option(help="Stage-2 method, e.g. flare, lora, flare_mt.")],
    lang: Annotated[str, typer.Option(help="Target language, e.g. javanese or jav.")],
    config: ConfigOption = None,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 42,
    set_: SetOption = None,
    data_dir: DataDirOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train one method for one language (stage 1 first, if needed) and report its test score."""
    from flare_xlt.recipes import Cell, load_config, run_cell, run_stage1

    overrides = [*(set_ or []), *_one_cell(method, lang)]
    settings = load_config(config, overrides, values=_paths(data_dir=data_dir))
    stage1_dir = run_stage1(settings, progress=not quiet)
    for result in run_cell(settings, Cell(method, (lang,), seed), stage1_dir, not quiet):
        typer.echo(f"{result.method} {result.language}: {result.metric} = {result.score:.2f}")


@app.command()
def evaluate(
    method: Annotated[str, typer.Option(help="The method the adapter was trained with.")],
    lang: Annotated[str, typer.Option(help="Target language to test on.")],
    adapter: Annotated[
        Path | None, typer.Option(help="Adapter directory (trained methods only).")
    ] = None,
    target_only: TargetOnlyOption = False,
    config: ConfigOption = None,
    set_: SetOption = None,
    data_dir: DataDirOption = None,
    quiet: QuietOption = False,
) -> None:
    """Evaluate the stage-1 model (zero_shot, translate_test) or a saved adapter on a test set."""
    from flare_xlt.recipes import evaluate_language, load_config, prepare_method, run_stage1
    from flare_xlt.recipes.methods import METHODS, get_method
    from flare_xlt.recipes.stage2 import check_adapter_method
    from flare_xlt.recipes.target_only import check_target_only, without_english

    overrides = [*(set_ or []), *_one_cell(method, lang)]
    settings = load_config(config, overrides, values=_paths(data_dir=data_dir))
    if target_only:
        check_target_only(get_method(method))
    if METHODS[method].trains and adapter is None:
        raise FlareError(f"method {method!r} trains an adapter: pass --adapter DIR")
    if adapter is not None:
        check_adapter_method(adapter, METHODS[method])
    stage1_dir = run_stage1(settings, progress=not quiet)
    setup = prepare_method(settings, method, stage1_dir, adapter)
    if target_only:
        setup = without_english(setup)
    result = evaluate_language(settings, setup, lang, seed=0, progress=not quiet)
    typer.echo(
        f"{result.method} {result.language}: {result.metric} = {result.score:.2f} "
        f"(English at test time: {result.english_side})"
    )


@app.command()
def predict(
    method: Annotated[str, typer.Option(help="The method the adapter was trained with.")],
    input_: Annotated[
        Path,
        typer.Option(
            "--input",
            help="CSV, TSV or JSONL of target texts (target_text; source_text, the English, "
            "for flare, translate_test, input_fusion and x_mixup; optional id).",
        ),
    ],
    output: Annotated[Path, typer.Option(help="JSONL predictions; an unfinished one resumes.")],
    lang: Annotated[
        str | None, typer.Option(help="Target language (default: the config's only one).")
    ] = None,
    adapter: Annotated[
        Path | None, typer.Option(help="Adapter directory (trained methods only).")
    ] = None,
    target_only: TargetOnlyOption = False,
    config: ConfigOption = None,
    set_: SetOption = None,
    data_dir: DataDirOption = None,
    quiet: QuietOption = False,
) -> None:
    """Label your own unlabeled file with a saved adapter (or the stage-1 model)."""
    from flare_xlt.recipes import load_config
    from flare_xlt.recipes import predict as predict_file

    overrides = [*(set_ or []), f"methods=[{method}]", *([f"languages=[{lang}]"] if lang else [])]
    settings = load_config(config, overrides, values=_paths(data_dir=data_dir))
    summary = predict_file(
        settings,
        method,
        input_,
        output,
        adapter_dir=adapter,
        target_only=target_only,
        progress=not quiet,
    )
    typer.echo(
        f"wrote {summary.rows} predictions to {summary.output} "
        f"({summary.predicted} predicted now; record: {summary.record})"
    )


@app.command()
def demo(
    data_dir: DataDirOption = None,
    output_dir: Annotated[Path | None, typer.Option(help="Where to write the run.")] = None,
    fast: Annotated[bool, typer.Option(help="A tiny slice, a few steps (a smoke test).")] = False,
    set_: SetOption = None,
    quiet: QuietOption = False,
) -> None:
    """NusaX-senti with Gemma-3-270M on javanese and toba_batak: every method, one table."""
    from flare_xlt.recipes import demo_settings, load_config, run_experiment

    paths = _paths(data_dir=data_dir, output_dir=output_dir)
    settings = load_config(overrides=set_, base=demo_settings(fast), values=paths)
    report = run_experiment(settings, progress=not quiet)
    typer.echo(report["markdown"])
    typer.echo(f"\nwrote {report['root']}/results.json, results.md and results.png")


@app.command()
def report(
    results: Annotated[list[Path], typer.Argument(help="results.json files of finished runs.")],
    output_dir: Annotated[Path, typer.Option(help="Where to write the combined table.")],
    label: Annotated[
        str | None, typer.Option(help="Config key that tells the runs apart, e.g. adapter.fusion.")
    ] = None,
    title: Annotated[str | None, typer.Option(help="Table and plot title.")] = None,
) -> None:
    """Combine several experiments' results into one table and plot (e.g. an ablation)."""
    from flare_xlt.recipes import combine_reports

    typer.echo(combine_reports(results, output_dir, label, title))


@app.command("upgrade-records")
def upgrade_records(
    directories: Annotated[
        list[Path], typer.Argument(help="Experiment folders (e.g. results/nusax_gemma).")
    ],
) -> None:
    """Rewrite the stage1.json and cell records of an older flare-xlt in the current schema.

    The finished models and cells stay usable without computing them again; each record is
    checked before any is rewritten, and one that cannot be upgraded is refused.
    """
    from flare_xlt.records import upgrade_records as upgrade

    upgraded = upgrade(directories)
    for path in upgraded:
        typer.echo(f"upgraded {path}")
    typer.echo(f"{len(upgraded)} record(s) upgraded")


def main() -> None:
    """Entry point: user-fixable errors become one line on stderr and exit code 2."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("flare_xlt")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        app()
    except FlareError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
