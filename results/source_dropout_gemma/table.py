"""Source dropout on NusaX (Gemma-3-270M, seed 42): FLARE with and without the English.

Run from the repository root: ``python results/source_dropout_gemma/table.py``. Prints a
Markdown table (macro-F1 per language) and the paired differences the claim needs: with
dropout, FLARE without English against LoRA, and FLARE with English against LoRA. Dropout 0
and LoRA are the cells of results/nusax_realistic; every cell shares one English task model.
"""

import json
import statistics
from pathlib import Path

LANGUAGES = ("javanese", "sundanese", "acehnese", "toba_batak")
ROWS = (  # (label, cells folder, method, English side at test time)
    ("lora", "results/nusax_realistic", "lora", "none"),
    ("flare p=0, human English", "results/nusax_realistic", "flare", "human"),
    ("flare p=0, no English", "results/nusax_realistic", "flare", "none"),
    ("flare p=0.3, human English", "results/source_dropout_gemma/p0.3", "flare", "human"),
    ("flare p=0.3, no English", "results/source_dropout_gemma/p0.3", "flare", "none"),
    ("flare p=0.5, human English", "results/source_dropout_gemma/p0.5", "flare", "human"),
    ("flare p=0.5, no English", "results/source_dropout_gemma/p0.5", "flare", "none"),
)


def score(folder: str, method: str, side: str, language: str) -> float | None:
    """The cell's test macro-F1 with the English ``side``, None if not run yet."""
    for path in Path(folder, "cells", method, language, "seed42").glob("cell*.json"):
        result = json.loads(path.read_text())["results"][0]
        if result["english_side"] == side:
            return result["score"]
    return None


scores = {label: [score(f, m, s, lang) for lang in LANGUAGES] for label, f, m, s in ROWS}
print("| FLARE source dropout | " + " | ".join(LANGUAGES) + " | Avg |")
print("|---|" + "---:|" * (len(LANGUAGES) + 1))
for label, values in scores.items():
    cells = ["—" if v is None else f"{v:.2f}" for v in values]
    done = [v for v in values if v is not None]
    average = f"{statistics.mean(done):.2f}" if len(done) == len(values) else "—"
    print(f"| {label} | " + " | ".join(cells) + f" | {average} |")
print("\nMacro-F1 (%), seed 42; English at test time as named (human = oracle); — = not run.\n")
for label, values in scores.items():
    if label == "lora":
        continue
    pairs = [(v, r) for v, r in zip(values, scores["lora"], strict=True) if None not in (v, r)]
    if pairs:
        differences = " ".join(f"{v - r:+.2f}" for v, r in pairs)
        mean = statistics.mean(v - r for v, r in pairs)
        print(f"{label} - lora: {differences}; mean {mean:+.2f} over {len(pairs)} languages")
