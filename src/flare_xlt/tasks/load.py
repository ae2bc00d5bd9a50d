"""Loading a built-in task: from a local data directory, or from the Hugging Face Hub.

``source="auto"`` (the default) reads the local copy when a data directory is
given or found (``$FLARE_DATA_DIR``, else ``../shared/data``) and falls back to
the hub otherwise. ``english_side`` picks the English paired with each target
item: ``"human"`` (professional translations; an oracle at test time) or
``"machine"`` (machine translation, available for the XNLI sw/ur test sets).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from flare_xlt.errors import FlareError
from flare_xlt.languages import resolve_language
from flare_xlt.paths import default_data_dir
from flare_xlt.tasks import nusax, tydiqa, xnli, xquad
from flare_xlt.tasks.examples import Example
from flare_xlt.tasks.report import Issues, LoadedSplit
from flare_xlt.tasks.spec import get_task_spec
from flare_xlt.tasks.splits import check_split

EnglishSide = Literal["human", "machine"]
Source = Literal["auto", "local", "hub"]


def load_split(
    task: str,
    language: str,
    split: str,
    data_dir: str | Path | None = None,
    english_side: EnglishSide = "human",
    source: Source = "auto",
    errors: Literal["raise", "skip"] = "raise",
) -> LoadedSplit:
    """One split of a built-in task in one language, with its :class:`LoadReport`.

    Args:
        task: ``nusax_senti``, ``xnli``, ``tydiqa`` or ``xquad``.
        language: any code :func:`flare_xlt.languages.resolve_language` accepts.
        split: ``train``, ``validation`` (or ``dev``) or ``test`` (see
            :mod:`flare_xlt.tasks.splits`).
        data_dir: the local data directory; default ``$FLARE_DATA_DIR`` or ``../shared/data``.
        english_side: ``"human"`` or ``"machine"`` English for the source side.
        source: ``"local"``, ``"hub"``, or ``"auto"`` (local if a data directory exists).
        errors: ``"raise"`` on the first bad row, or ``"skip"`` it and report it.
    """
    spec = get_task_spec(task)
    lang = resolve_language(language)
    split = check_split(split)
    issues = Issues(errors)
    if english_side not in ("human", "machine"):
        raise FlareError(f"english_side must be 'human' or 'machine', not {english_side!r}")
    if english_side == "machine" and spec.name != "xnli":
        raise FlareError(
            f"{spec.name} has no machine-translated English here; use english_side='human' "
            "or translate the data first"
        )
    directory = resolve_data_dir(data_dir, source)
    if directory is None:
        from flare_xlt.tasks.hub import load_hub

        if english_side == "machine":
            raise FlareError("the hub has no machine-translated XNLI English; use a data dir")
        examples, files = load_hub(spec.name, lang, split, issues)
    elif spec.name == "nusax_senti":
        examples, files = nusax.load_local(directory, lang, split, issues)
    elif spec.name == "xnli":
        examples, files = xnli.load_local(directory, lang, split, english_side, issues)
    elif spec.name == "tydiqa":
        examples, files = tydiqa.load_local(directory, lang, split, issues)
    else:
        examples, files = xquad.load_local(directory, lang, split, issues)
    if not examples:
        raise FlareError(f"{spec.name} {lang.iso639_3} {split}: no examples loaded from {files}")
    if spec.name == "tydiqa":
        issues.note("no English side: TyDiQA questions are written natively, not translated")
    else:
        issues.note(f"English side: {english_side} translations")
    report = issues.report(tuple(files), len(examples))
    return LoadedSplit(spec, lang.iso639_3, split, tuple(examples), report)


def load_task(
    task: str,
    language: str,
    split: str,
    data_dir: str | Path | None = None,
    english_side: EnglishSide = "human",
    source: Source = "auto",
    errors: Literal["raise", "skip"] = "raise",
) -> list[Example]:
    """The examples of :func:`load_split`; its report is logged (a warning if rows were skipped)."""
    loaded = load_split(task, language, split, data_dir, english_side, source, errors)
    loaded.log_report()
    return list(loaded.examples)


def resolve_data_dir(data_dir: str | Path | None, source: Source = "auto") -> Path | None:
    """The local data directory a load reads (None: the Hugging Face Hub).

    ``data_dir`` if given, else ``$FLARE_DATA_DIR`` or ``../shared/data``; with
    ``source="hub"`` always None, with ``source="local"`` a directory is required.
    """
    if source not in ("auto", "local", "hub"):
        raise FlareError(f"source must be 'auto', 'local' or 'hub', not {source!r}")
    if source == "hub":
        return None
    directory = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if directory is None:
        if source == "local":
            raise FlareError("no data directory: pass --data-dir or set FLARE_DATA_DIR")
        return None
    if not directory.is_dir():
        raise FlareError(f"data directory {directory} does not exist")
    return directory
