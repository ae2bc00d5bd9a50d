"""TyDiQA-GoldP: extractive QA with questions written natively in each language.

Local layout: ``<data>/tydiqa_goldp/dev/<name>_tydiqa_dev.json`` and
``<data>/tydiqa_goldp/train/<name>_tydiqa_train.json`` (SQuAD v1.1 JSON,
``<name>`` the TyDiQA language name, e.g. ``swahili``). There is no English
side: the questions are not translations, so ``source_*`` fields are None.
*test* is the GoldP dev set; train and validation are cut from the train file
by article title (see :mod:`flare_xlt.tasks.splits`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from flare_xlt.errors import FlareError
from flare_xlt.languages import Language
from flare_xlt.tasks.examples import QAExample
from flare_xlt.tasks.readers import file_error
from flare_xlt.tasks.report import Issues
from flare_xlt.tasks.splits import tydiqa_train_selection
from flare_xlt.tasks.squad import QARecord, read_squad, unique_by_id


def language_name(language: Language) -> str:
    """The TyDiQA name of ``language``; :class:`FlareError` if TyDiQA does not cover it."""
    if language.tydiqa_name is None:
        raise FlareError(f"TyDiQA-GoldP has no {language.name} ({language.iso639_3}) data")
    return language.tydiqa_name


def build(
    records: Sequence[QARecord], language: str, split: str, issues: Issues
) -> list[QAExample]:
    """Target-only examples of ``split`` from the questions of one file (dev for test)."""
    if split != "test":
        records = [records[i] for i in tydiqa_train_selection([r.title for r in records], split)]
    return [record.to_example(language) for record in unique_by_id(list(records), issues).values()]


def load_local(
    data_dir: Path, language: Language, split: str, issues: Issues
) -> tuple[list[QAExample], tuple[Path, ...]]:
    """Examples of one split from the local TyDiQA-GoldP copy, and the file read."""
    name = language_name(language)
    folder, part = ("dev", "dev") if split == "test" else ("train", "train")
    path = data_dir / "tydiqa_goldp" / folder / f"{name}_tydiqa_{part}.json"
    if not path.is_file():
        directory = path.parent
        available = sorted(p.name.split("_")[0] for p in directory.glob("*.json"))
        raise file_error(path, "file", f"file not found (local TyDiQA {folder}: {available})")
    return build(read_squad(path, issues), language.iso639_3, split, issues), (path,)
