"""What data a finished cell read, by content: a changed file makes the cell stale.

A cell records the size and SHA-256 of every file it read (the target-language file and
its English partner, for each split), built-in tasks included. When a file's content
changes, the runner refuses the finished cell and names the file, instead of reporting
scores computed from the old data. Paths are not compared, so a moved data directory
with the same files stays valid.
"""

from __future__ import annotations

import functools
from pathlib import Path

from flare_xlt.fileio import sha256_file
from flare_xlt.recipes.config import ExperimentConfig
from flare_xlt.recipes.data import loaded_english_side, split_file
from flare_xlt.recipes.machine_english import machine_english_file
from flare_xlt.tasks import load_split


def cell_data_record(
    config: ExperimentConfig, languages: tuple[str, ...], trains: bool
) -> dict[str, list[dict]]:
    """``"{language}/{split}"`` -> the fingerprints of the files that split was read from.

    A cell reads the test split of each of ``languages``, and the train and validation
    splits too when its method ``trains``.
    """
    splits = ("train", "validation", "test") if trains else ("test",)
    record = {}
    for language in languages:
        for split in splits:
            files = split_files(config, language, split)
            record[f"{language}/{split}"] = [file_fingerprint(name) for name in files]
    return record


def split_files(config: ExperimentConfig, language: str, split: str) -> tuple[str, ...]:
    """The files (or hub datasets) that :func:`~flare_xlt.recipes.data.load_examples` reads."""
    machine = ()
    if split == "test" and config.data.machine_english is not None:
        machine = (str(machine_english_file(config.data.machine_english, language)),)
    if config.data.files is not None:
        return (str(split_file(config, language, split)), *machine)
    english_side = loaded_english_side(config, split)
    loaded = load_split(config.task, language, split, config.data.data_dir, english_side)
    return (*loaded.report.files, *machine)


def file_fingerprint(name: str) -> dict:
    """``{"file", "size", "sha256"}`` of a local file; a hub dataset is recorded by name."""
    path = Path(name)
    if not path.is_file():
        return {"file": name}
    stat = path.stat()
    identity = (stat.st_ino, stat.st_size, stat.st_mtime_ns)  # a changed file is re-hashed
    return {"file": name, "size": stat.st_size, "sha256": _sha256(str(path), identity)}


@functools.lru_cache(maxsize=256)
def _sha256(path: str, identity: tuple[int, int, int]) -> str:
    return sha256_file(Path(path))


def changed_files(saved: dict, current: dict) -> list[str]:
    """The current files whose content differs from what ``saved`` recorded, each once.

    A split recorded from another number of files than it reads now names all of them;
    a split the saved record did not read is not compared.
    """
    changed = []
    for key, files in current.items():
        before = saved.get(key)
        if before is None:
            continue
        if len(before) != len(files):
            changed += [now["file"] for now in files]
            continue
        pairs = zip(files, before, strict=True)
        changed += [now["file"] for now, then in pairs if _content(now) != _content(then)]
    return list(dict.fromkeys(changed))


def _content(fingerprint: dict) -> dict:
    return {key: value for key, value in fingerprint.items() if key != "file"}
