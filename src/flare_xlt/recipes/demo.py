"""The embedded defaults of ``flare demo``: NusaX-senti, Gemma-3-270M, two target languages.

Chosen to finish within about 25 minutes on a 2-core CPU: small training
subsets, one epoch, short sequences, evaluation on a fixed subset of the test
split. Every value can be overridden (``flare demo --set stage2.num_epochs=3``).
"""

from __future__ import annotations

DEMO_METHODS = ["zero_shot", "translate_test", "lora", "input_fusion", "flare", "flare_mt"]


def demo_settings(fast: bool = False) -> dict:
    """The demo's config as a nested dict; ``fast`` is a tiny slice for CI's end-to-end test."""
    train, validation, test, steps = (8, 8, 8, 2) if fast else (200, 32, 100, None)
    training = {"learning_rate": 5e-4, "num_epochs": 1, "max_steps": steps, "save_every_steps": 25}
    return {
        "name": "demo-fast" if fast else "demo",
        "task": "nusax_senti",
        "languages": ["javanese", "toba_batak"],
        "methods": list(DEMO_METHODS),
        "seeds": [42],
        "backbone": "gemma-3-270m",
        "latent_encoder": "multilingual-e5-small",
        "data": {
            "max_length": 64,
            "max_train_examples": train,
            "max_validation_examples": validation,
            "max_test_examples": test,
        },
        "stage1": dict(training),
        "stage2": dict(training),
    }
