"""``flare models``: list, prepare and verify the built-in offline models."""

from __future__ import annotations

from typing import NoReturn

import typer

from flare_xlt.errors import FlareError
from flare_xlt.models import BUILTIN_MODELS, list_models, prepare_model, verify_model

app = typer.Typer(
    help="Built-in offline models: list them, convert them into the cache, verify the cache.",
    no_args_is_help=True,
)

_COLUMNS = ("name", "kind", "prepared", "licence", "cache path")


@app.command("list")
def list_command() -> None:
    """Show every built-in model, whether it is converted, its licence and cache path."""
    rows = [
        (m.name, m.kind, "yes" if m.prepared else "no", m.licence, str(m.cache_dir))
        for m in list_models()
    ]
    widths = [max(len(row[i]) for row in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]
    for row in [_COLUMNS, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        typer.echo("  ".join(cells).rstrip())


@app.command()
def prepare(name: str = typer.Argument(..., help="Built-in model name.")) -> None:
    """Convert built-in model NAME into the cache (once) and print its directory."""
    _check_name(name)
    try:
        path = prepare_model(name, progress=True)
    except FlareError as err:
        _fail(str(err), code=1)
    typer.echo(str(path))


@app.command()
def verify(name: str = typer.Argument(..., help="Built-in model name.")) -> None:
    """Check the cached conversion of NAME against its manifest (sizes and sha256)."""
    _check_name(name)
    try:
        reason = verify_model(name)
    except FlareError as err:
        _fail(str(err), code=1)
    if reason is not None:
        _fail(f"{name}: {reason} (run `flare models prepare {name}`)", code=1)
    typer.echo(f"{name}: OK")


def _check_name(name: str) -> None:
    if name not in BUILTIN_MODELS:
        _fail(f"unknown built-in model {name!r}; choose one of: {', '.join(BUILTIN_MODELS)}", 2)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
