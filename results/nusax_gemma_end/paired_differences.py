"""Per-language differences of Table 1 rerun with the 0.2 alignment defaults (seed 42).

Run from the repository root: ``python results/nusax_gemma_end/paired_differences.py``.
Every cell compared here ran on one English task model (English validation 86.888): the
Table 1 cells (results/nusax_gemma) of every language but javanese and sundanese, whose
Table 1 cells used an earlier model; for those two the LoRA reference is the realistic
grid's LoRA cells (results/nusax_realistic), which share this model.
"""

import json
import statistics
from pathlib import Path

LANGUAGES = (
    "javanese", "sundanese", "acehnese", "toba_batak", "balinese", "banjarese", "buginese",
    "indonesian", "madurese", "minangkabau", "ngaju",
)  # fmt: skip
OTHER_ENGLISH_MODEL = ("javanese", "sundanese")
NEW = Path("results/nusax_gemma_end")
TABLE_1 = Path("results/nusax_gemma")
REALISTIC = Path("results/nusax_realistic")


def score(root: Path, method: str, language: str) -> float | None:
    path = root / "cells" / method / language / "seed42" / "cell.json"
    return json.loads(path.read_text())["results"][0]["score"] if path.is_file() else None


def lora_reference(language: str) -> float | None:
    root = REALISTIC if language in OTHER_ENGLISH_MODEL else TABLE_1
    return score(root, "lora", language)


def same_model_table_1(method: str):
    """Table 1's ``method`` cell where it shares the English task model, else None."""
    return lambda language: (
        None if language in OTHER_ENGLISH_MODEL else score(TABLE_1, method, language)
    )


COMPARISONS = (  # (new method, reference name, reference score by language)
    ("flare", "lora", lora_reference),
    ("flare", "flare token_index (Table 1)", same_model_table_1("flare")),
    ("flare_mt", "lora", lora_reference),
    ("flare_mt", "flare_mt token_index (Table 1)", same_model_table_1("flare_mt")),
)

for method, name, reference in COMPARISONS:
    differences = {}
    for language in LANGUAGES:
        ours, theirs = score(NEW, method, language), reference(language)
        if ours is not None and theirs is not None:
            differences[language] = ours - theirs
    cells = " ".join(f"{lang} {d:+.2f}" for lang, d in differences.items())
    ahead = sum(d > 0 for d in differences.values())
    mean = statistics.mean(differences.values())
    print(f"{method} (0.2 defaults) - {name}: {cells}")
    print(f"  mean {mean:+.2f} over {len(differences)} languages, ahead on {ahead}\n")
