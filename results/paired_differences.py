"""Per-seed differences of a method against LoRA on the NusaX-Gemma cells (Table 1b).

Run from the repository root: ``python results/paired_differences.py``.
"""

import json
import statistics
from pathlib import Path

CELLS = Path("results/nusax_gemma/cells")
LANGUAGES = ("javanese", "sundanese", "acehnese", "toba_batak")
SEEDS = (42, 43, 44)


def score(method: str, language: str, seed: int) -> float | None:
    path = CELLS / method / language / f"seed{seed}" / "cell.json"
    return json.loads(path.read_text())["results"][0]["score"] if path.is_file() else None


for method in ("flare", "flare_mt"):
    differences = []
    for language in LANGUAGES:
        row = {}
        for seed in SEEDS:
            ours, lora = score(method, language, seed), score("lora", language, seed)
            if ours is not None and lora is not None:
                row[seed] = ours - lora
        differences += row.values()
        print(method, language, " ".join(f"seed {s}: {d:+.2f}" for s, d in row.items()))
    mean, std = statistics.mean(differences), statistics.stdev(differences)
    ahead = sum(d > 0 for d in differences)
    print(
        f"{method} - lora: ahead in {ahead} of {len(differences)} runs; mean {mean:+.2f}, "
        f"std {std:.2f}, standard error {std / len(differences) ** 0.5:.2f}\n"
    )
