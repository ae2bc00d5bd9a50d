"""Split names, and how the built-in datasets are cut into train / validation / test.

The split names are ``train``, ``validation`` and ``test``; ``dev`` is accepted as
another name of ``validation`` (:func:`check_split` turns it into ``validation``).
A user's own files (``data.files`` with a ``{split}`` placeholder) are looked up
under :data:`FILE_NAMES`: the validation file is ``validation`` if that file
exists, else ``dev`` (both at once are refused as ambiguous).

Where a dataset lacks a split, a fixed, deterministic part of another split is
held out. Items are cut by *group* (all hypotheses of one premise, all questions
on one article or passage), so no text is shared across splits. Groups are
ranked by their key (sorted, so the cut does not depend on file order) and
group ``rank % buckets`` decides the split:

* NusaX-senti: ``train.csv`` / ``valid.csv`` / ``test.csv`` as published.
* XNLI: no training set here (no MNLI). The 2490 dev rows are 830 premises x 3
  hypotheses, in consecutive triples. Premise group ``g = row // 3``; groups
  with ``g % 3 == 2`` are *validation* (828 rows), the others *train* (1662
  rows). *test* is the test file (5010 rows).
* TyDiQA-GoldP: *test* is the official GoldP dev set. *train* and
  *validation* come from the train file: articles (by title) ranked by title,
  ``rank % 10 == 9`` is validation (about 10 %), the rest train.
* XQuAD: one 1190-question set. Passages ranked by their English context;
  ``rank % 5`` 0-2 is train, 3 validation, 4 test (about 60/20/20 %).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from flare_xlt.errors import FlareError

SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {"dev": "validation"}
# The names a split's own file may have, in the order they are looked for.
FILE_NAMES = {"train": ("train",), "validation": ("validation", "dev"), "test": ("test",)}


def check_split(split: str) -> str:
    """The split ``split`` names: one of :data:`SPLITS` (``dev`` is ``validation``).

    Anything else raises :class:`FlareError`.
    """
    split = SPLIT_ALIASES.get(split, split)
    if split not in SPLITS:
        names = ", ".join((*SPLITS, *SPLIT_ALIASES))
        raise FlareError(f"split must be one of {names}, not {split!r}")
    return split


def group_buckets(keys: Sequence[Hashable], buckets: int) -> list[int]:
    """Each item's bucket: its group key's rank among the sorted distinct keys, mod ``buckets``."""
    rank = {key: position for position, key in enumerate(sorted(set(keys)))}
    return [rank[key] % buckets for key in keys]


def xnli_in_split(row: int, split: str) -> bool:
    """Whether 0-based row ``row`` of the XNLI dev (train, validation) or test file is in it."""
    if split == "test":
        return True
    return ((row // 3) % 3 == 2) == (split == "validation")


def tydiqa_train_selection(titles: Sequence[str], split: str) -> list[int]:
    """Indices of TyDiQA train questions that form ``split`` ("train" or "validation")."""
    buckets = group_buckets(titles, 10)
    return [i for i, bucket in enumerate(buckets) if (bucket == 9) == (split == "validation")]


_XQUAD_BUCKETS = {"train": (0, 1, 2), "validation": (3,), "test": (4,)}


def xquad_selection(english_contexts: Sequence[str], split: str) -> list[int]:
    """Indices of XQuAD questions (by their English passage) that form ``split``."""
    buckets = group_buckets(english_contexts, 5)
    return [i for i, bucket in enumerate(buckets) if bucket in _XQUAD_BUCKETS[split]]
