"""Per-language differences between the alignment rows of the Gemma ablation.

Run from the repository root: ``python results/alignment_gemma/paired_differences.py``.
Every row shares one English task model (results/alignment_gemma/stage1), so the rows of a
language differ only in the adapter's alignment (and, for the flare_mt rows, the method;
for end_add and end_cross_attention, the fusion function instead of add_relu, all end-aligned).
Every row is seed 42 but end_seed43 and end_add_seed43, the second seed of end (add_relu) and
end_add; the last lines pool both seeds of that comparison.
"""

import json
import statistics
from pathlib import Path

ROOT = Path("results/alignment_gemma")
LANGUAGES = ("javanese", "sundanese", "acehnese", "toba_batak")
# The committed Table 1 cells of acehnese and toba_batak (results/nusax_gemma) ran on the
# same English task model (English validation 86.888); its javanese and sundanese cells did
# not, so only those two languages are compared with them.
TABLE_1 = "../nusax_gemma"
SAME_ENGLISH_MODEL = ("acehnese", "toba_batak")
# The LoRA cells of the realistic-English grid share this folder's English task model on
# all four languages (stage1_dir).
REALISTIC = "../nusax_realistic"
COMPARISONS = (  # (row, its method, reference row, its method, languages)
    ("end", "flare", "token_index", "flare", LANGUAGES),
    ("proportional", "flare", "token_index", "flare", LANGUAGES),
    ("proportional", "flare", "end", "flare", LANGUAGES),
    ("position", "flare", "token_index", "flare", LANGUAGES),
    ("end", "flare", "position", "flare", LANGUAGES),
    ("mt_pooled", "flare_mt", "mt_token_index", "flare_mt", LANGUAGES),
    ("end_add", "flare", "end", "flare", LANGUAGES),  # the fusion function under end
    ("end_cross_attention", "flare", "end", "flare", LANGUAGES),
    ("end_add", "flare", "end_cross_attention", "flare", LANGUAGES),
    ("end_add_seed43", "flare", "end_seed43", "flare", LANGUAGES),  # the second seed
    ("end", "flare", REALISTIC, "lora", LANGUAGES),
    ("end_add", "flare", REALISTIC, "lora", LANGUAGES),
    ("end_cross_attention", "flare", REALISTIC, "lora", LANGUAGES),
    ("token_index", "flare", REALISTIC, "lora", LANGUAGES),
    ("position", "flare", REALISTIC, "lora", LANGUAGES),
    ("end", "flare", TABLE_1, "lora", SAME_ENGLISH_MODEL),
    ("token_index", "flare", TABLE_1, "lora", SAME_ENGLISH_MODEL),
    ("mt_pooled", "flare_mt", TABLE_1, "flare_mt", SAME_ENGLISH_MODEL),
)


SEEDS_POOLED = (("end_add", "end"), ("end_add_seed43", "end_seed43"))  # add - add_relu


def score(row: str, method: str, language: str) -> float | None:
    seed = "seed43" if row.endswith("_seed43") else "seed42"
    path = ROOT / row / "cells" / method / language / seed / "cell.json"
    return json.loads(path.read_text())["results"][0]["score"] if path.is_file() else None


for row, method, reference, reference_method, languages in COMPARISONS:
    names = {
        TABLE_1: f"{reference_method} (Table 1)",
        REALISTIC: f"{reference_method} (realistic grid)",
    }
    name = names.get(reference, reference)
    differences = {}
    for language in languages:
        ours, theirs = score(row, method, language), score(reference, reference_method, language)
        if ours is not None and theirs is not None:
            differences[language] = ours - theirs
    if not differences:
        print(f"{row} - {name}: no language has both cells yet\n")
        continue
    cells = " ".join(f"{lang} {d:+.2f}" for lang, d in differences.items())
    mean = statistics.mean(differences.values())
    print(f"{row} - {name}: {cells}; mean {mean:+.2f} over {len(differences)} languages")
    missing = [lang for lang in languages if lang not in differences]
    print(f"  (not run yet: {', '.join(missing)})\n" if missing else "")

pooled = [
    score(row, "flare", language) - score(reference, "flare", language)
    for row, reference in SEEDS_POOLED
    for language in LANGUAGES
    if score(row, "flare", language) is not None and score(reference, "flare", language) is not None
]
if pooled:
    ahead = sum(difference > 0 for difference in pooled)
    spread = statistics.stdev(pooled) if len(pooled) > 1 else float("nan")
    print(
        f"add - add_relu under end, seeds 42 and 43 pooled: mean {statistics.mean(pooled):+.2f} "
        f"(sd {spread:.2f}) over {len(pooled)} language-seed pairs, add ahead in {ahead}"
    )
