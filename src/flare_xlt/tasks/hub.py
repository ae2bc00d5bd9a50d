"""Loading the built-in datasets from the Hugging Face Hub with ``datasets``.

Used when no local data directory exists. The hub copies are mapped to the same
rows as the local files and go through the same pairing and checks, and the
same split definitions apply (:mod:`flare_xlt.tasks.splits`). Hub datasets:
``indonlp/NusaX-senti`` (config = ISO 639-3 code), ``facebook/xnli`` (config =
ISO 639-1 code; its machine-translated MNLI train split is not used),
``google-research-datasets/tydiqa`` (``secondary_task`` = GoldP, all languages
mixed, selected by id prefix) and ``google/xquad`` (config ``xquad.<xx>``).
The hub has no machine-translated XNLI English.
"""

from __future__ import annotations

from typing import Any

from flare_xlt.errors import FlareError
from flare_xlt.languages import Language
from flare_xlt.tasks import nusax, tydiqa, xnli, xquad
from flare_xlt.tasks.examples import Example
from flare_xlt.tasks.readers import BadField, get_text
from flare_xlt.tasks.report import Issues
from flare_xlt.tasks.squad import QARecord, question_record

_Loaded = tuple[list[Example], tuple[str, ...]]
REPOSITORIES = {
    "nusax_senti": "indonlp/NusaX-senti",
    "xnli": "facebook/xnli",
    "tydiqa": "google-research-datasets/tydiqa",
    "xquad": "google/xquad",
}


def load_hub(task: str, language: Language, split: str, issues: Issues) -> _Loaded:
    """Examples of one split of a built-in task from the hub, and the hub datasets read."""
    if task == "nusax_senti":
        return _nusax(language, split, issues)
    if task == "xnli":
        return _xnli(language, split, issues)
    if task == "tydiqa":
        return _tydiqa(language, split, issues)
    return _xquad(language, split, issues)


def _fetch(task: str, config: str, split: str) -> tuple[Any, str]:
    import datasets

    repository = REPOSITORIES[task]
    name = f"hub:{repository}/{config}/{split}"
    try:
        return datasets.load_dataset(repository, config, split=split), name
    except (OSError, ValueError) as error:  # ConnectionError and DatasetNotFoundError are OSErrors
        raise FlareError(
            f"the dataset {repository} ({config}, {split}) could not be reached on the "
            f"Hugging Face Hub ({type(error).__name__}: {error}); pass --data-dir or set "
            "FLARE_DATA_DIR to a local copy of the data"
        ) from None


def _label_name(dataset: Any, value: Any) -> str:
    feature = dataset.features["label"]
    if isinstance(value, int) and hasattr(feature, "int2str"):
        return feature.int2str(value)
    return str(value)


def _nusax(language: Language, split: str, issues: Issues) -> _Loaded:
    nusax.folder_name(language)  # raises for languages NusaX does not cover
    sides = {}
    for config in dict.fromkeys((language.iso639_3, "eng")):
        dataset, name = _fetch("nusax_senti", config, split)
        sides[config] = (
            name,
            [
                nusax.NusaxRow(
                    str(row["id"]),
                    row["text"],
                    _label_name(dataset, row["label"]),
                    name,
                    f"row {i}",
                )
                for i, row in enumerate(dataset)
            ],
        )
    target_name, target = sides[language.iso639_3]
    english_name, english = sides["eng"]
    examples = nusax.pair_with_english(target, english, english_name, language.iso639_3, issues)
    return examples, tuple(dict.fromkeys((target_name, english_name)))


def _xnli(language: Language, split: str, issues: Issues) -> _Loaded:
    code = xnli.language_code(language)
    hub_split = "test" if split == "test" else "validation"
    sides = {}
    for config in dict.fromkeys((code, "en")):
        dataset, name = _fetch("xnli", config, hub_split)
        sides[config] = (
            name,
            [
                xnli.XnliRow(
                    i,
                    _label_name(dataset, row["label"]),
                    row["premise"],
                    row["hypothesis"],
                    name,
                    f"row {i}",
                )
                for i, row in enumerate(dataset)
            ],
        )
    target_name, target = sides[code]
    english_name, english = sides["en"]
    examples = xnli.build(target, english, english_name, language.iso639_3, split, issues)
    return examples, tuple(dict.fromkeys((target_name, english_name)))


def _qa_records(dataset: Any, name: str, issues: Issues, prefix: str = "") -> list[QARecord]:
    records = []
    for i, row in enumerate(dataset):
        if not str(row["id"]).startswith(prefix):
            continue
        try:
            context = get_text(row, "context")
            records.append(question_record(row, context, row.get("title") or "", name, f"row {i}"))
        except BadField as bad:
            issues.row(name, f"row {i}", bad.field, bad.message)
    return records


def _tydiqa(language: Language, split: str, issues: Issues) -> _Loaded:
    prefix = f"{tydiqa.language_name(language)}-"
    dataset, name = _fetch("tydiqa", "secondary_task", "validation" if split == "test" else "train")
    records = _qa_records(dataset, name, issues, prefix)
    issues.note(f"selected the {len(records)} {prefix[:-1]} questions of the mixed-language set")
    return tydiqa.build(records, language.iso639_3, split, issues), (name,)


def _xquad(language: Language, split: str, issues: Issues) -> _Loaded:
    code = xquad.language_code(language)
    sides = {}
    for config in dict.fromkeys((code, "en")):
        dataset, name = _fetch("xquad", f"xquad.{config}", "validation")
        sides[config] = name, _qa_records(dataset, name, issues)
    target_name, target = sides[code]
    english_name, english = sides["en"]
    examples = xquad.build(target, english, english_name, language.iso639_3, split, issues)
    return examples, tuple(dict.fromkeys((target_name, english_name)))
