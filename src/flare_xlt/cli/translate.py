"""``flare translate``: machine-translate a task split into a paired dataset file.

Train and validation splits are translated from English into ``--lang``
(translate-train); the test split from ``--lang`` into English
(translate-test). Translations are cached (resumable: rerunning after an
interruption only translates what is missing).

The model is a seq2seq MT model (NLLB, M2M100, Marian) or a decoder-only LM asked
with a prompt (the built-in ``gemma-3-270m``, any causal-LM directory or hub id);
``--backend auto`` tells them apart by the model's config. ``--reference`` prints
the chrF of the translations against reference translations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from flare_xlt.errors import FlareError
from flare_xlt.tasks import get_task_spec, load_task
from flare_xlt.tasks.examples import Example
from flare_xlt.translate.base import Translator
from flare_xlt.translate.batched import BatchedTranslator
from flare_xlt.translate.cache import CachedTranslator, TranslationCache, default_cache_path
from flare_xlt.translate.dataset import (
    ENGLISH,
    TranslationSummary,
    direction_for_split,
    direction_languages,
    translate_dataset,
)
from flare_xlt.translate.hf import HFSeq2SeqTranslator
from flare_xlt.translate.llm import HFCausalLMTranslator
from flare_xlt.translate.loading import BACKENDS, detect_backend
from flare_xlt.translate.prompt import DEFAULT_PROMPT, read_prompt_file
from flare_xlt.translate.qa import Markers
from flare_xlt.translate.reference import (
    check_references,
    read_references,
    score_translations,
)

app = typer.Typer(no_args_is_help=True)


# A callback, not a command, so that ``flare translate --task ...`` works both when the
# main CLI registers this app with ``add_typer`` and the function with ``command``.
@app.callback(invoke_without_command=True)
def translate(
    task: Annotated[str, typer.Option(help="Task: nusax_senti, xnli, tydiqa, xquad.")],
    lang: Annotated[str, typer.Option(help="Target language, any code: sw, swh, javanese...")],
    split: Annotated[str, typer.Option(help="train/validation (to LANG) or test (to English).")],
    model: Annotated[
        str,
        typer.Option(
            help="MT model (NLLB, M2M100, Marian) or decoder LLM (gemma-3-270m): name, hub id "
            "or dir."
        ),
    ],
    output: Annotated[Path, typer.Option(help="Paired JSONL file to write.")],
    data_dir: Annotated[
        Path | None, typer.Option(help="Dataset directory (default: FLARE_DATA_DIR).")
    ] = None,
    backend: Annotated[
        str, typer.Option(help="auto (from the model's config), seq2seq or llm.")
    ] = "auto",
    prompt_file: Annotated[
        Path | None,
        typer.Option(help="LLM prompt template with {source}, {target}, {text} (a UTF-8 file)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Sentences per generate call.")] = 16,
    num_beams: Annotated[
        int | None, typer.Option(help="Beam width of seq2seq models (default 4; LLMs: greedy).")
    ] = None,
    max_new_tokens: Annotated[
        int,
        typer.Option(
            help="Generation limit per sentence (LLMs: 8 + 2 per input token, at most this)."
        ),
    ] = 256,
    max_input_tokens: Annotated[
        int, typer.Option(help="Texts with more tokens are split into sentences.")
    ] = 200,
    fallback_lang: Annotated[
        str | None,
        typer.Option(help="Language used where the model has no code for LANG (ind for bbc)."),
    ] = None,
    revision: Annotated[str | None, typer.Option(help="Model branch, tag or commit.")] = None,
    device: Annotated[str | None, typer.Option(help="torch device, e.g. cuda:0.")] = None,
    cache: Annotated[
        Path | None,
        typer.Option(help="Cache file (default: FLARE_HOME/translation-cache/<model>.jsonl)."),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not use a cache.")] = False,
    commit_every: Annotated[int, typer.Option(help="Texts per durable cache write.")] = 256,
    limit: Annotated[int | None, typer.Option(help="Only the first N examples.")] = None,
    marker_open: Annotated[str, typer.Option(help="Opening QA answer marker.")] = "«",
    marker_close: Annotated[str, typer.Option(help="Closing QA answer marker.")] = "»",
    reference: Annotated[
        Path | None,
        typer.Option(help="Reference translations (CSV/TSV/JSONL: id, text): print chrF."),
    ] = None,
) -> None:
    """Translate one split of TASK for language LANG with model MODEL into OUTPUT."""
    try:
        direction = direction_for_split(split)
        examples = _load_examples(task, lang, split, direction, data_dir, limit)
        references = None
        if reference is not None:  # a missing reference fails before any translating
            references = read_references(reference)
            check_references(references, examples)
        translator = _load_translator(
            model,
            _backend(model, backend, revision),
            num_beams,
            fallback_lang,
            prompt_file,
            revision=revision,
            device=device,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            max_input_tokens=max_input_tokens,
            progress=True,
        )
        # unusable language codes, or a one-pair model for the other direction, fail first
        translator.language_pair(*direction_languages(direction, lang))
        if not no_cache:
            store = TranslationCache(cache or default_cache_path(model))
            translator = CachedTranslator(translator, store, commit_every=commit_every)
        summary = translate_dataset(
            examples,
            translator,
            output,
            lang=lang,
            direction=direction,
            task=task,
            split=split,
            markers=Markers(marker_open, marker_close),
            label_names=get_task_spec(task).label_names,
        )
        score = None
        if references is not None:
            score = score_translations(output, direction, references)
    except FlareError as err:
        _fail(str(err))
    _report(summary, translator)
    if score is not None:
        typer.echo(
            f"chrF = {score.chrf.score:.2f} against {reference} "
            f"({score.texts} texts; {score.chrf.signature})"
        )


def _backend(model: str, backend: str, revision: str | None) -> str:
    """The backend ``--backend`` names, or for ``auto`` the one the model's config needs."""
    if backend == "auto":
        return detect_backend(model, revision)
    if backend not in BACKENDS:
        raise FlareError(f"--backend must be auto, {' or '.join(BACKENDS)}, not {backend!r}")
    return backend


def _load_translator(
    model: str,
    backend: str,
    num_beams: int | None,
    fallback_lang: str | None,
    prompt_file: Path | None,
    **common: Any,
) -> BatchedTranslator:
    """The translator of ``backend``; an option of the other backend is an error."""
    if backend == "seq2seq":
        if prompt_file is not None:
            raise FlareError(
                f"--prompt-file is for decoder LLMs; {model!r} is a seq2seq MT model "
                "(--backend llm to use it as a decoder)"
            )
        beams = 4 if num_beams is None else num_beams
        return HFSeq2SeqTranslator.from_pretrained(
            model, num_beams=beams, fallback_lang=fallback_lang, **common
        )
    if num_beams not in (None, 1):
        raise FlareError(f"{model!r} is a decoder LLM, translated greedily: drop --num-beams")
    if fallback_lang is not None:
        raise FlareError(
            f"{model!r} is a decoder LLM, asked for any registry language by name: "
            "drop --fallback-lang (it is for seq2seq models without a code for a language)"
        )
    prompt = read_prompt_file(prompt_file) if prompt_file is not None else DEFAULT_PROMPT
    return HFCausalLMTranslator.from_pretrained(model, prompt=prompt, **common)


def _load_examples(
    task: str, lang: str, split: str, direction: str, data_dir: Path | None, limit: int | None
) -> list[Example]:
    """The split to translate: English for translate-train, LANG for translate-test."""
    if limit is not None and limit < 1:
        raise FlareError(f"--limit must be at least 1, got {limit}")
    language = ENGLISH if direction == "to_target" else lang
    return load_task(task, language, split, data_dir=data_dir)[:limit]


def _report(summary: TranslationSummary, translator: Translator) -> None:
    typer.echo(f"wrote {summary.written} of {summary.examples} examples to {summary.output}")
    typer.echo(f"provenance: {summary.provenance}")
    if isinstance(translator, CachedTranslator):
        typer.echo(
            f"cache {translator.cache.path}: {translator.hits} hits, "
            f"{translator.translated} newly translated"
        )
    if summary.empty_translation_ids:
        typer.echo(f"dropped {len(summary.empty_translation_ids)} empty translations", err=True)
    projection = summary.projection
    if projection is not None:
        reasons = ", ".join(f"{reason}: {n}" for reason, n in projection.drop_reasons().items())
        typer.echo(
            f"answer projection: kept {projection.kept} of {projection.total}"
            + (f" (dropped {reasons})" if reasons else "")
        )


def _fail(message: str) -> NoReturn:
    """One line on stderr and exit code 2, as ``flare``'s entry point does for user errors."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)
