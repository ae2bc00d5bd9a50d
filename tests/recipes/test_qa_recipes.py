"""QA: featurization for every method and head, batching, loss, generation and span decoding."""

import dataclasses

import pytest
import torch
import transformers as tf
from recipe_tokenizer import word_tokenizer
from tiny_models import tiny_config, tiny_m2m100_encoder

from flare_xlt import FlareConfig, FlareModel, LatentEncoder
from flare_xlt.errors import FlareError
from flare_xlt.evaluate import compute_metric
from flare_xlt.recipes import METHODS
from flare_xlt.recipes.features import Collator
from flare_xlt.recipes.qa import QAFeaturizer, QAScorer
from flare_xlt.recipes.qa_scoring import (
    SOURCE_KEYS,
    NewlineStop,
    best_spans,
    decode_spans,
    first_line,
)
from flare_xlt.tasks import QAExample, get_template

torch.set_num_threads(1)

TEMPLATE = get_template("tydiqa")
ROWS = [  # (target context, question, answer), (English context, question, answer)
    (
        ("Jakarta adalah ibu kota Indonesia", "apa ibu kota Indonesia", "Jakarta"),
        ("Jakarta is the capital of Indonesia", "what is the capital of Indonesia", "Jakarta"),
    ),
    (
        ("gunung Bromo ada di Jawa Timur", "di mana gunung Bromo", "Jawa Timur"),
        ("mount Bromo is in East Java", "where is mount Bromo", "East Java"),
    ),
    (
        ("Danau Toba ada di Sumatra Utara", "di mana Danau Toba", "Sumatra"),
        ("lake Toba is in North Sumatra", "where is lake Toba", "North Sumatra"),
    ),
    (
        ("kota terbesar kedua adalah Surabaya", "apa kota terbesar kedua", "Surabaya"),
        ("the second largest city is Surabaya", "what is the second largest city", "Surabaya"),
    ),
]
FILLER = "kata"  # a passage word that is never an answer


def example(i: int = 0, context: str | None = None, english: bool = True) -> QAExample:
    (target_context, question, answer), (en_context, en_question, en_answer) = ROWS[i]
    context = target_context if context is None else context
    return QAExample(
        id=f"q{i}",
        language="ind",
        context=context,
        question=question,
        answers=(answer, answer.lower()),
        answer_starts=(context.index(answer), context.index(answer)),
        source_context=en_context if english else None,
        source_question=en_question if english else None,
        source_answers=(en_answer,) if english else None,
    )


@pytest.fixture(scope="module")
def tokenizer():
    """Word-level LLM-style tokenizer with EOS and a newline token."""
    words = " ".join(" ".join(side) for row in ROWS for side in row)
    words += f" Context: Question: Answer: {FILLER}"
    tokenizer = word_tokenizer([words], vocab_size=128)
    tokenizer.add_special_tokens({"eos_token": "<eos>"})
    tokenizer.add_tokens(["\n"])
    return tokenizer


@pytest.fixture(scope="module")
def latent_tokenizer():
    """The latent encoder's own (small) vocabulary: target-language words only."""
    return word_tokenizer([" ".join(" ".join(target) for target, _ in ROWS)], padding_side="right")


def featurizer(tokenizer, method="lora", head="causal_lm", **kwargs) -> QAFeaturizer:
    return QAFeaturizer(tokenizer, TEMPLATE, head, METHODS[method], **kwargs)


def words(tokenizer, ids) -> str:
    """Decoded ids, newlines shown as ``/``."""
    return tokenizer.decode(ids).replace("\n", "/")


def word_id(tokenizer, word: str) -> int:
    return tokenizer.convert_tokens_to_ids(word)


def tiny_llama(tokenizer, seed: int = 0) -> tf.LlamaForCausalLM:
    """A tiny random Llama; weights large enough (0.2) for a LoRA on q/v to learn in a few steps."""
    torch.manual_seed(seed)
    config = tiny_config("llama", vocab_size=len(tokenizer), initializer_range=0.2)
    return tf.LlamaForCausalLM(config).eval()


def tiny_bert_qa(tokenizer, seed: int = 0) -> tf.BertForQuestionAnswering:
    torch.manual_seed(seed)
    config = tiny_config(
        "bert", vocab_size=len(tokenizer), max_position_embeddings=128, num_labels=2
    )
    return tf.BertForQuestionAnswering(config).eval()


# ---------------------------------------------------------------------- causal LM features
def test_labels_cover_only_the_answer_and_eos(tokenizer):
    feature = featurizer(tokenizer)(example(1))
    ids, labels = feature["input_ids"], feature["labels"]
    assert len(labels) == len(ids)
    labelled = [t for t, label in zip(ids, labels, strict=True) if label != -100]
    assert words(tokenizer, labelled) == "Jawa Timur <eos>"
    assert [label for label in labels if label != -100] == labelled
    prompt = feature["prompt_ids"]
    assert ids[: len(prompt)] == prompt and labels[: len(prompt)] == [-100] * len(prompt)
    assert words(tokenizer, prompt) == (
        "<bos> Context: gunung Bromo ada di Jawa Timur / Question: di mana gunung Bromo / Answer:"
    )
    assert feature["references"] == ["Jawa Timur", "jawa timur"]
    assert feature["cache_key"] == "q1"


def test_every_method_builds_its_streams(tokenizer, latent_tokenizer):
    streams = {
        "zero_shot": set(),
        "translate_test": set(),
        "lora": set(),
        "input_fusion": set(),
        "flare": {"source_input_ids"},
        "flare_mt": {"latent_input_ids"},
    }
    features = {}
    for name, extra in streams.items():
        feature = featurizer(tokenizer, name, latent_tokenizer=latent_tokenizer)(example(0))
        assert {k for k in feature if k.endswith("input_ids")} == {"input_ids"} | extra, name
        features[name] = feature
    target = "Context: Jakarta adalah ibu kota Indonesia / Question: apa ibu kota Indonesia"
    english = (
        "Context: Jakarta is the capital of Indonesia / Question: what is the capital of Indonesia"
    )
    prompt = {name: words(tokenizer, f["prompt_ids"]) for name, f in features.items()}
    assert prompt["lora"] == prompt["zero_shot"] == f"<bos> {target} / Answer:"
    assert prompt["translate_test"] == f"<bos> {english} / Answer:"
    assert prompt["input_fusion"] == (
        "<bos> Context: Jakarta is the capital of Indonesia / Jakarta adalah ibu kota Indonesia"
        " / Question: what is the capital of Indonesia / apa ibu kota Indonesia / Answer:"
    )
    assert words(tokenizer, features["flare"]["source_input_ids"]) == f"<bos> {english} / Answer:"
    latent = latent_tokenizer.decode(features["flare_mt"]["latent_input_ids"])
    assert latent == "<bos> Jakarta adalah ibu kota Indonesia apa ibu kota Indonesia"
    # the English prompt answers with, and is scored against, the English gold answers
    english_only = features["translate_test"]
    answer = english_only["input_ids"][len(english_only["prompt_ids"]) :]
    assert words(tokenizer, answer) == "Jakarta <eos>"
    assert english_only["references"] == ["Jakarta"]
    assert features["lora"]["references"] == ["Jakarta", "jakarta"]
    machine_english = dataclasses.replace(example(0), source_answers=None)
    with pytest.raises(FlareError, match="example 'q0' has no English gold answers"):
        featurizer(tokenizer, "translate_test")(machine_english)


def test_missing_english_side_names_the_example(tokenizer):
    for name in ("translate_test", "input_fusion", "flare"):
        with pytest.raises(FlareError, match="example 'q2' has no English side"):
            featurizer(tokenizer, name)(example(2, english=False))
    featurizer(tokenizer, "lora")(example(2, english=False))  # target-only methods need none
    with pytest.raises(FlareError, match="latent encoder tokenizer"):
        featurizer(tokenizer, "flare_mt")
    with pytest.raises(FlareError, match="EOS"):
        featurizer(word_tokenizer(["a b"]))


def test_truncation_cuts_the_context_only(tokenizer):
    head = " ".join([FILLER] * 30)
    long = example(1, context=f"{head} gunung Bromo ada di Jawa Timur {FILLER} {FILLER}")
    feature = featurizer(tokenizer, max_length=20, max_answer_tokens=4)(long)
    prompt = feature["prompt_ids"]
    assert len(prompt) == 20 - 4 - 1  # the prompt's budget; the answer has its own reserve
    # the prediction prompt keeps the passage's start: it never depends on the gold answer
    kept = " ".join([FILLER] * 5)
    assert words(tokenizer, prompt) == (
        f"<bos> Context: {kept} / Question: di mana gunung Bromo / Answer:"
    )
    # the training input keeps the window around the answer, then the whole answer
    first_label = next(i for i, label in enumerate(feature["labels"]) if label != -100)
    prefix = feature["input_ids"][:first_label]
    assert len(prefix) == len(prompt)
    assert words(tokenizer, prefix) == (
        "<bos> Context: ada di Jawa Timur kata / Question: di mana gunung Bromo / Answer:"
    )
    assert words(tokenizer, feature["input_ids"][len(prefix) :]) == "Jawa Timur <eos>"
    # an answer longer than the reserve is kept whole
    wide = QAExample("w", "ind", f"{head} Jawa Timur", "di mana", ("Jawa Timur",), (len(head) + 1,))
    feature = featurizer(tokenizer, max_length=20, max_answer_tokens=1)(wide)
    labelled = [
        t for t, label in zip(feature["input_ids"], feature["labels"], strict=True) if label != -100
    ]
    assert words(tokenizer, labelled) == "Jawa Timur <eos>"
    # a question longer than the budget is never cut: the passage goes instead
    question = " ".join(["di"] * 30)
    feature = featurizer(tokenizer, max_length=20, max_answer_tokens=4)(
        QAExample("q", "ind", "gunung Bromo", question, ("Bromo",), (7,))
    )
    assert (
        words(tokenizer, feature["prompt_ids"])
        == f"<bos> Context: / Question: {question} / Answer:"
    )


def test_input_fusion_shares_the_budget_between_passages(tokenizer):
    long_target = " ".join([FILLER] * 40) + " Jakarta"
    feature = featurizer(tokenizer, "input_fusion", max_length=24, max_answer_tokens=4)(
        example(0, context=long_target)
    )
    prompt = words(tokenizer, feature["prompt_ids"])
    assert len(feature["prompt_ids"]) == 2 * 24 - 4 - 1  # twice max_length
    # the short English passage is kept whole, the target one gets the rest
    assert prompt.startswith("<bos> Context: Jakarta is the capital of Indonesia / kata kata")
    assert prompt.endswith(
        "/ Question: what is the capital of Indonesia / apa ibu kota Indonesia / Answer:"
    )


# ---------------------------------------------------------------------- extractive features
def test_extractive_features_locate_the_answer_tokens(tokenizer):
    feature = featurizer(tokenizer, "flare", "classifier", max_length=32)(example(1))
    ids, start, end = feature["input_ids"], feature["start_positions"], feature["end_positions"]
    assert words(tokenizer, ids) == (
        "<bos> di mana gunung Bromo gunung Bromo ada di Jawa Timur"  # (question, context) pair
    )
    assert words(tokenizer, ids[start : end + 1]) == "Jawa Timur"
    offsets = feature["offsets"]
    assert offsets[:5] == [None] * 5  # special token and question: never part of an answer
    assert feature["context"][offsets[start][0] : offsets[end][1]] == "Jawa Timur"
    assert words(tokenizer, feature["source_input_ids"]) == (
        "<bos> where is mount Bromo mount Bromo is in East Java"
    )
    # beyond the (single) window the answer points at the first token
    long = example(1, context=" ".join([FILLER] * 40) + " Jawa Timur")
    cut = featurizer(tokenizer, "lora", "classifier", max_length=16)(long)
    assert len(cut["input_ids"]) == 16 and cut["start_positions"] == cut["end_positions"] == 0
    # input fusion: both passages are read, only the target one can hold the answer
    fused = featurizer(tokenizer, "input_fusion", "classifier", max_length=32)(example(1))
    english = len("mount Bromo is in East Java ")
    assert fused["context"][:english] == "mount Bromo is in East Java "
    eligible = [o for o in fused["offsets"] if o is not None]
    assert len(eligible) == 6 and all(o[0] >= english for o in eligible)
    span = (
        fused["offsets"][fused["start_positions"]][0],
        fused["offsets"][fused["end_positions"]][1],
    )
    assert fused["context"][slice(*span)] == "Jawa Timur"


# ---------------------------------------------------------------------- batching
def test_collate_pads_each_stream_on_its_side(tokenizer, latent_tokenizer):
    featurize = featurizer(tokenizer, "flare_mt", latent_tokenizer=latent_tokenizer)
    features = [featurize(example(i)) for i in (0, 1)]
    batch = Collator(tokenizer.pad_token_id, "right", latent_pad_token_id=7)(features)
    width = batch["input_ids"].shape[1]
    short = min(range(2), key=lambda i: len(features[i]["input_ids"]))
    n = len(features[short]["input_ids"])
    assert batch["input_ids"][short, :n].tolist() == features[short]["input_ids"]
    assert batch["labels"][short, n:].tolist() == [-100] * (width - n)  # same side as the ids
    assert batch["labels"][short, :n].tolist() == features[short]["labels"]
    prompt_width = batch["prompt_input_ids"].shape[1]
    for i, feature in enumerate(features):  # prompts are left-padded whatever padding_side
        p = len(feature["prompt_ids"])
        assert batch["prompt_input_ids"][i, prompt_width - p :].tolist() == feature["prompt_ids"]
        assert batch["prompt_attention_mask"][i].tolist() == [0] * (prompt_width - p) + [1] * p
        latent = feature["latent_input_ids"]
        assert batch["latent_input_ids"][i, : len(latent)].tolist() == latent
    assert (batch["latent_input_ids"] == 7).any()
    assert batch["cache_keys"] == ["q0", "q1"]
    assert batch["references"] == [["Jakarta", "jakarta"], ["Jawa Timur", "jawa timur"]]
    extractive = featurizer(tokenizer, "lora", "classifier")
    batch = Collator(tokenizer.pad_token_id, "left")([extractive(example(i)) for i in (0, 1)])
    assert batch["start_positions"].dtype == torch.long and batch["end_positions"].shape == (2,)
    assert batch["contexts"] == [ROWS[0][0][0], ROWS[1][0][0]] and len(batch["offsets"]) == 2


# ---------------------------------------------------------------------- loss
@pytest.mark.parametrize(("source", "padding_side"), [("model", "left"), ("latent", "right")])
def test_loss_is_the_models_own_and_trains_through_flare(
    tokenizer, latent_tokenizer, source, padding_side
):
    base = tiny_llama(tokenizer)
    latent = None
    if source == "latent":
        latent = LatentEncoder(tiny_m2m100_encoder(), base.config.hidden_size)
    model = FlareModel.from_base(base, FlareConfig(source=source), latent).train()
    method = "flare" if source == "model" else "flare_mt"
    featurize = featurizer(tokenizer, method, latent_tokenizer=latent_tokenizer)
    batch = Collator(tokenizer.pad_token_id, padding_side, latent_tokenizer.pad_token_id)(
        [featurize(example(i)) for i in range(4)]  # answers of 1 and 2 tokens
    )
    scorer = QAScorer("causal_lm", tokenizer)
    loss = scorer.loss(model, batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    reference = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        labels=batch["labels"],
        **{k: batch[k] for k in SOURCE_KEYS if k in batch},
    ).loss  # the model's own loss, from logits at every position
    torch.testing.assert_close(loss, reference)
    loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
    if source == "latent":
        assert model.latent_encoder.projection.weight.grad is not None


# ---------------------------------------------------------------------- generation
def test_answers_are_cut_at_the_first_newline():
    assert first_line(" Jawa Timur\nQuestion: di mana") == "Jawa Timur"
    assert first_line("Surabaya") == "Surabaya"
    assert first_line("\nJakarta") == ""
    assert first_line("  ") == ""
    stop = NewlineStop(torch.tensor([5, 9]))
    done = stop(torch.tensor([[1, 9], [9, 4], [3, 5]]), scores=torch.zeros(3, 10))
    assert done.tolist() == [True, False, True]  # judged by the last token only


def forced_head(model: tf.LlamaForCausalLM, token: int) -> None:
    """Replace the LM head by one whose greedy choice is always ``token`` (bias only)."""
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[token] = 1.0
    model.lm_head = head


def test_generation_stops_at_newline_or_max_new_tokens(tokenizer):
    base = tiny_llama(tokenizer)
    model = FlareModel.from_base(base, FlareConfig())
    featurize = featurizer(tokenizer, "flare")
    features = [featurize(example(i)) for i in range(2)]
    collate = Collator(tokenizer.pad_token_id, "left")
    scorer = QAScorer("causal_lm", tokenizer, max_new_tokens=3)
    newline = word_id(tokenizer, "\n")
    assert newline in scorer._newline_ids.tolist()
    forced_head(base, word_id(tokenizer, "Jakarta"))
    assert (
        scorer.predict(model, features, collate, progress=False) == ["Jakarta Jakarta Jakarta"] * 2
    )
    forced_head(base, newline)
    assert scorer.predict(model, features, collate, progress=False) == ["", ""]
    batch = collate(features)
    out = model.generate(
        batch["prompt_input_ids"],
        batch["prompt_attention_mask"],
        source_input_ids=batch["source_input_ids"],
        source_attention_mask=batch["source_attention_mask"],
        max_new_tokens=3,
        do_sample=False,
        stopping_criteria=[NewlineStop(scorer._newline_ids)],
    )
    assert out.shape[1] == batch["prompt_input_ids"].shape[1] + 1  # stopped after the newline


def test_greedy_predictions_come_back_in_input_order(tokenizer):
    base = tiny_llama(tokenizer, seed=3)
    model = FlareModel.from_base(base, FlareConfig())  # zero B: generates as the base model
    collate = Collator(tokenizer.pad_token_id, "left")
    scorer = QAScorer("causal_lm", tokenizer, max_new_tokens=4)
    features = [featurizer(tokenizer, "flare")(example(i)) for i in (3, 0, 1)]  # mixed lengths
    batched = scorer.predict(model, features, collate, batch_size=2, progress=False)
    one_by_one = [scorer.predict(model, [f], collate, progress=False)[0] for f in features]
    assert batched == one_by_one and len(batched) == 3 and all(isinstance(a, str) for a in batched)
    for feature, answer in zip(features, batched, strict=True):
        prompt = torch.tensor([feature["prompt_ids"]])
        ids = base.generate(prompt, max_new_tokens=4, do_sample=False, pad_token_id=0)
        new = ids[0, prompt.shape[1] :].tolist()
        eos = tokenizer.eos_token_id
        new = new[: new.index(eos)] if eos in new else new
        assert answer == first_line(tokenizer.decode(new, skip_special_tokens=True))
    # the plain HF model (zero-shot / translate-test) generates through the same path
    english = [featurizer(tokenizer, "translate_test")(example(i)) for i in (3, 0, 1)]
    assert len(scorer.predict(base, english, collate, batch_size=2, progress=False)) == 3
    assert scorer.references(features)[0] == ["Surabaya", "surabaya"]


# ---------------------------------------------------------------------- extractive scoring
@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_span_decoding_on_hand_made_logits(tokenizer, padding_side):
    featurize = featurizer(tokenizer, "lora", "classifier")
    features = [featurize(example(i)) for i in (1, 3)]
    batch = Collator(tokenizer.pad_token_id, padding_side)(features)
    width = batch["input_ids"].shape[1]
    start, end = torch.zeros(2, width), torch.zeros(2, width)

    def column(row: int, token: int) -> int:  # feature token index -> batch column
        real = batch["attention_mask"][row].nonzero().squeeze(-1)
        return int(real[token])

    # row 0: "di mana gunung Bromo | gunung Bromo ada di Jawa Timur" (context from token 5)
    start[0, column(0, 1)] = 9.0  # a question token: not a valid start
    start[0, column(0, 9)], end[0, column(0, 10)] = 5.0, 5.0  # "Jawa Timur"
    end[0, column(0, 6)] = 8.0  # ends before the start: ignored
    # row 1: "apa kota terbesar kedua | kota terbesar kedua adalah Surabaya" (from token 5)
    start[1, column(1, 5)], end[1, column(1, 9)] = 4.0, 4.0  # 5 tokens: too long for max 3
    start[1, column(1, 9)], end[1, column(1, 9)] = 3.0, 3.0  # "Surabaya"
    assert decode_spans(start, end, batch, max_tokens=3) == ["Jawa Timur", "Surabaya"]
    assert decode_spans(start, end, batch, max_tokens=5)[1] == "kota terbesar kedua adalah Surabaya"
    nothing = torch.zeros(1, 4, dtype=torch.bool)
    assert best_spans(torch.zeros(1, 4), torch.zeros(1, 4), nothing, 3).tolist() == [[-1, -1]]


def test_extractive_loss_and_prediction_through_flare(tokenizer):
    model = FlareModel.from_base(tiny_bert_qa(tokenizer), FlareConfig()).train()
    featurize = featurizer(tokenizer, "flare", "classifier", max_length=32)
    features = [featurize(example(i)) for i in range(4)]
    collate = Collator(tokenizer.pad_token_id, "right")
    scorer = QAScorer("classifier", tokenizer, max_new_tokens=4)
    loss = scorer.loss(model, collate(features))
    assert torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if "lora_B" in n)
    answers = scorer.predict(model, features, collate, batch_size=3, progress=False)
    assert model.training  # the mode is restored
    for feature, answer in zip(features, answers, strict=True):
        assert answer and answer in feature["context"] and len(answer.split()) <= 4


# ---------------------------------------------------------------------- end to end
def test_a_few_sgd_steps_reduce_the_loss(tokenizer):
    model = FlareModel.from_base(tiny_llama(tokenizer), FlareConfig()).train()
    featurize = featurizer(tokenizer, "flare")
    features = [featurize(example(i)) for i in range(4)]
    collate = Collator(tokenizer.pad_token_id, "left")
    scorer = QAScorer("causal_lm", tokenizer, max_new_tokens=4)
    batch = collate(features)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.05)
    losses = []
    for _ in range(12):
        loss = scorer.loss(model, batch)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert losses[-1] < 0.5 * losses[0]
    predictions = scorer.predict(model, features, collate, progress=False)
    scores = compute_metric("squad", predictions, scorer.references(features))
    assert set(scores) == {"exact_match", "f1"} and 0 <= scores[scorer.metric_key] <= 100
