"""Per-language differences in the realistic-English grid (NusaX, Gemma-3-270M, seed 42).

Run from the repository root: ``python results/nusax_realistic/paired_differences.py``.
Every method's adapter was trained once on the human English of the training pairs, then
tested with the human English (oracle), Gemma-3-270M's own machine translation, and none;
every cell shares one English task model (results/alignment_gemma/stage1).
"""

import json
import statistics
from pathlib import Path

ROOT = Path("results/nusax_realistic/cells")
LANGUAGES = ("javanese", "sundanese", "acehnese", "toba_batak")
COMPARISONS = (  # (method, English side, reference method, its side)
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


def score(method: str, side: str, language: str) -> float | None:
    """The cell's test score with the English ``side``, None if not run yet."""
    for path in (ROOT / method / language / "seed42").glob("cell*.json"):
        result = json.loads(path.read_text())["results"][0]
        if result["english_side"] == side:
            return result["score"]
    return None


for method, side, reference, reference_side in COMPARISONS:
    differences = {}
    for language in LANGUAGES:
        ours, theirs = score(method, side, language), score(reference, reference_side, language)
        if ours is not None and theirs is not None:
            differences[language] = ours - theirs
    name = f"{method} ({side}) - {reference} ({reference_side})"
    if not differences:
        print(f"{name}: no language has both cells yet")
        continue
    cells = " ".join(f"{lang} {d:+.2f}" for lang, d in differences.items())
    mean = statistics.mean(differences.values())
    print(f"{name}: {cells}; mean {mean:+.2f} over {len(differences)} languages")
