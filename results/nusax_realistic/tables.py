"""The realistic-English grid and the source-dropout rows (NusaX, Gemma-3-270M, seed 42).

Run from the repository root: ``python results/nusax_realistic/tables.py``. Every adapter was
trained once on the human English of the training pairs and tested with the human English
(oracle), with Gemma-3-270M's own machine translation, and without English; every cell
shares one English task model (results/alignment_gemma/stage1). Prints the paired
differences of the realistic grid, then the source-dropout table and its differences to LoRA.
"""

import json
import statistics
from pathlib import Path

LANGUAGES = ("javanese", "sundanese", "acehnese", "toba_batak")
REALISTIC = "results/nusax_realistic"
DROPOUT = "results/source_dropout_gemma"
COMPARISONS = (  # (method, English side, reference method, its side), all in REALISTIC
    ("flare", "machine", "translate_test", "machine"),
    ("flare", "machine", "input_fusion", "machine"),
    ("flare", "machine", "x_mixup", "machine"),
    ("flare", "machine", "lora", "none"),
    ("flare", "machine", "flare", "human"),
    ("flare", "none", "lora", "none"),
    ("flare", "human", "lora", "none"),
    ("input_fusion", "machine", "lora", "none"),
    ("translate_test", "machine", "lora", "none"),
)
DROPOUT_ROWS = (  # (label, cells folder, method, English side at test time)
    ("lora", REALISTIC, "lora", "none"),
    ("flare p=0, human English", REALISTIC, "flare", "human"),
    ("flare p=0, no English", REALISTIC, "flare", "none"),
    ("flare p=0.3, human English", f"{DROPOUT}/p0.3", "flare", "human"),
    ("flare p=0.3, no English", f"{DROPOUT}/p0.3", "flare", "none"),
    ("flare p=0.5, human English", f"{DROPOUT}/p0.5", "flare", "human"),
    ("flare p=0.5, no English", f"{DROPOUT}/p0.5", "flare", "none"),
    # the linear fusion (add instead of add_relu), on javanese and toba_batak only
    ("flare add, p=0.5, human English", f"{DROPOUT}/add_p0.5", "flare", "human"),
    ("flare add, p=0.5, no English", f"{DROPOUT}/add_p0.5", "flare", "none"),
)


def scores(folder: str, method: str, side: str) -> list[float | None]:
    """Per language, the cell's test score with the English ``side`` (None: not run yet)."""
    found = []
    for language in LANGUAGES:
        paths = Path(folder, "cells", method, language, "seed42").glob("cell*.json")
        results = [json.loads(path.read_text())["results"][0] for path in paths]
        found.append(next((r["score"] for r in results if r["english_side"] == side), None))
    return found


def differences(name: str, ours: list, theirs: list) -> str:
    """One line: per-language differences and their mean, or that none is run yet."""
    pairs = {
        lang: o - t
        for lang, o, t in zip(LANGUAGES, ours, theirs, strict=True)
        if None not in (o, t)
    }
    if not pairs:
        return f"{name}: no language has both cells yet"
    cells = " ".join(f"{lang} {d:+.2f}" for lang, d in pairs.items())
    return f"{name}: {cells}; mean {statistics.mean(pairs.values()):+.2f} over {len(pairs)}"


for method, side, reference, reference_side in COMPARISONS:
    name = f"{method} ({side}) - {reference} ({reference_side})"
    print(
        differences(
            name, scores(REALISTIC, method, side), scores(REALISTIC, reference, reference_side)
        )
    )

rows = {label: scores(folder, method, side) for label, folder, method, side in DROPOUT_ROWS}
print("\n| FLARE source dropout | " + " | ".join(LANGUAGES) + " | Avg |")
print("|---|" + "---:|" * (len(LANGUAGES) + 1))
for label, values in rows.items():
    cells = ["—" if v is None else f"{v:.2f}" for v in values]
    average = "—" if None in values else f"{statistics.mean(values):.2f}"
    print(f"| {label} | " + " | ".join(cells) + f" | {average} |")
print("\nMacro-F1 (%), seed 42; English at test time as named (human = oracle); — = not run.\n")
for label, values in rows.items():
    if label != "lora":
        print(differences(f"{label} - lora", values, rows["lora"]))
