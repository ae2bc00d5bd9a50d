"""The built-in model registry and the ``flare models`` commands (no conversion needed)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flare_xlt.cli.models import app
from flare_xlt.errors import FlareError
from flare_xlt.models import BUILTIN_MODELS, BuiltinModel, get_builtin, list_models, prepare_model
from flare_xlt.models.registry import INSTALL_HINT

runner = CliRunner()


def test_registry_lists_the_two_offline_models(empty_home):
    models = list_models()
    assert [m.name for m in models] == ["gemma-3-270m", "multilingual-e5-small"]
    assert [m.kind for m in models] == ["decoder", "encoder"]
    assert all(m.licence and m.description and m.package in m.requires for m in models)
    assert get_builtin("multilingual-e5-small").cache_dir == (
        empty_home / "models" / "multilingual-e5-small"
    )
    assert not any(m.prepared for m in models)


def test_unknown_builtin_lists_names():
    with pytest.raises(FlareError, match="gemma-3-270m, multilingual-e5-small"):
        get_builtin("gemma-3-2b")
    with pytest.raises(FlareError, match="unknown built-in model"):
        prepare_model("gemma-3-2b")


def test_missing_packages_point_to_the_extra(empty_home):
    model = BuiltinModel(
        name="tiny",
        description="needs a package that is not installed",
        licence="MIT",
        package="flare-xlt-no-such-package",
        kind="encoder",
        requires=("flare-xlt-no-such-package",),
        convert=lambda out_dir, progress: None,
    )
    assert not model.installed and not model.prepared
    with pytest.raises(FlareError, match="flare-xlt-no-such-package") as info:
        model.versions()
    assert INSTALL_HINT in str(info.value)
    assert INSTALL_HINT == 'pip install -e ".[offline-models]"'


def test_cli_list_table(empty_home):
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split()[:3] == ["name", "kind", "prepared"]
    assert "licence" in header and "cache path" in header
    assert [row.split()[:3] for row in rows] == [
        ["gemma-3-270m", "decoder", "no"],
        ["multilingual-e5-small", "encoder", "no"],
    ]
    assert str(empty_home / "models" / "gemma-3-270m") in rows[0]
    assert "Gemma Terms of Use" in rows[0]


def test_cli_prepare_unknown_name_exits_2():
    result = runner.invoke(app, ["prepare", "bogus"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: unknown built-in model 'bogus'; choose one of: " + ", ".join(BUILTIN_MODELS)
    )


def test_cli_verify_unprepared_fails(empty_home):
    result = runner.invoke(app, ["verify", "multilingual-e5-small"])
    assert result.exit_code == 1
    assert result.output.startswith("error: ")
    if get_builtin("multilingual-e5-small").installed:
        assert "not prepared" in result.output
        assert "flare models prepare multilingual-e5-small" in result.output
    else:
        assert INSTALL_HINT in result.output
