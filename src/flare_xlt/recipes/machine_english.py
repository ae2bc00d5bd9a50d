"""Machine-translated English at test time, from a ``flare translate --split test`` output.

Training reads the human English of each pair; at test time a real user has only a
machine translation of the target input. ``data.machine_english`` names one translated
file per language (``results/nusax_mt_english/{language}.test.jsonl``): its
``source_text`` (and ``source_text_pair``) replace the English of the test examples with
the same id. The file must hold the same test set: every test id, with the same target
text and label, or the run stops with one line that names the file and the first id
that differs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from flare_xlt.errors import FlareError
from flare_xlt.tasks import ClassificationExample, TaskSpec, load_parallel_file


def machine_english_file(template: str, language: str) -> Path:
    """The translated test file of ``language``; FlareError when it does not exist."""
    path = Path(template.format(language=language))
    if not path.is_file():
        raise FlareError(
            f"no machine-translated English for {language}: {path} not found "
            f"(data.machine_english; make it with flare translate --lang {language} --split test)"
        )
    return path


def with_machine_english(
    examples: list[ClassificationExample], template: str, spec: TaskSpec, language: str
) -> list[ClassificationExample]:
    """``examples`` (a test split of ``spec``'s task) with the English of ``template``'s file."""
    path = machine_english_file(template, language)
    if spec.kind != "classification":
        raise FlareError(
            f"data.machine_english supports classification tasks, not {spec.name!r} ({spec.kind})"
        )
    translated = load_parallel_file(path, "classification", spec.label_names, language)
    by_id = {example.id: example for example in translated.examples}
    replaced = []
    for example in examples:
        machine = by_id.pop(example.id, None)
        if machine is None:
            raise FlareError(f"{path} has no translation of test example {example.id!r}")
        if machine.target != example.target or machine.label != example.label:
            raise FlareError(
                f"{path}: example {example.id!r} has another target text or label than the "
                f"{spec.name} test set; translate this test set again"
            )
        if machine.source is None:
            raise FlareError(f"{path}: example {example.id!r} has no source_text (English)")
        replaced.append(dataclasses.replace(example, source=machine.source))
    if by_id:
        extra = next(iter(by_id))
        raise FlareError(
            f"{path} holds {len(by_id)} examples the {spec.name} test set lacks (e.g. {extra!r}); "
            "was it translated from another split or language?"
        )
    return replaced
