"""The shipped model, its artifact and its corpus: what makes its held-out figures honest."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest

from tierone.triage import AUTOMATABLE_INTENTS, INTENTS
from tierone.triage.classifier import DEFAULT_ARTIFACT, classify_many, default_model
from tierone.triage.corpus import families
from tierone.triage.model import TriageModel
from tierone.triage.training import load_corpus, train

ARTIFACT = Path(str(resources.files("tierone.triage").joinpath("model", DEFAULT_ARTIFACT)))
REPO = Path(__file__).resolve().parents[2]


def test_the_artifact_is_small_and_its_card_records_the_held_out_figures():
    card = default_model().card
    assert ARTIFACT.stat().st_size <= 20_000_000
    held_out = card.metrics["heldout"]
    assert held_out["accuracy"] >= 0.95
    assert set(card.thresholds) >= set(AUTOMATABLE_INTENTS)
    assert all(0.5 <= t <= 0.97 for t in card.thresholds.values())
    # What the policy acts on (confidence at or above the threshold) must be right.
    assert all(p >= 0.95 for p in held_out["gated_precision"].values())


def test_the_artifact_round_trips_exactly():
    model = default_model()
    again = TriageModel.from_bytes(model.to_bytes())
    texts = ["reset my password please", "the printer is jammed", "add me to the sales group"]
    assert (again.predict_proba(texts) == model.predict_proba(texts)).all()


def test_the_artifact_holds_no_pickle_and_a_foreign_file_is_refused():
    with zipfile.ZipFile(ARTIFACT) as archive:
        assert {name.rsplit(".", 1)[-1] for name in archive.namelist()} == {"json", "npy"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("header.json", json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not a triage model"):
        TriageModel.from_bytes(buffer.getvalue())


def test_importing_triage_loads_no_numeric_library():
    code = (
        "import sys, tierone.triage; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'numpy', 'scipy')))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)  # noqa: S603
    assert done.stdout.strip() == "[]"


def test_the_webhook_path_never_imports_scikit_learn():
    code = "import sys, function_app; print([m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy')])"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)  # noqa: S603
    assert done.stdout.strip() == "[]"


# --- the corpus and its split ------------------------------------------------------------------


def test_the_held_out_split_shares_no_template_family_with_training():
    train_families = {e.labels["family"] for e in load_corpus("train")}
    held_out = load_corpus("heldout")
    assert {e.labels["family"] for e in held_out}.isdisjoint(train_families)
    assert {e.labels["family"] for e in held_out} == set(families.HELD_OUT)
    assert {e.intent for e in held_out} == set(INTENTS), "every intent is tested"


def test_held_out_tickets_name_systems_training_never_saw():
    from tierone.triage.corpus.generate import SYSTEMS

    assert set(SYSTEMS["train"]).isdisjoint(SYSTEMS["heldout"])
    train_text = " ".join(f"{e.subject} {e.body}" for e in load_corpus("train")).lower()
    assert not [s for s in SYSTEMS["heldout"] if s.lower() in train_text]


def test_no_held_out_ticket_is_a_near_duplicate_of_a_training_ticket():
    """Word-bigram cosine similarity of the cleaned text, against every training ticket."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import linear_kernel

    from tierone.triage.training import model_texts

    train_texts, held_texts = model_texts(load_corpus("train")), model_texts(load_corpus("heldout"))
    vectorizer = TfidfVectorizer(ngram_range=(2, 2)).fit(train_texts + held_texts)
    nearest = linear_kernel(vectorizer.transform(held_texts), vectorizer.transform(train_texts)).max(axis=1)
    assert (nearest >= 0.9).mean() < 0.01
    assert float(sorted(nearest)[len(nearest) // 2]) < 0.5  # the typical held-out ticket is far from all


def test_the_corpus_is_messy():
    noise = [layer for e in load_corpus("train") for layer in e.labels["noise"]]
    for layer in ("forwarded", "quoted-reply", "signature", "disclaimer", "typos", "lowercase", "html", "foreign"):
        assert noise.count(layer) >= 100, layer


def test_the_generator_reproduces_the_files_byte_for_byte():
    from tierone.triage.corpus.generate import HELDOUT_FILE, TRAIN_FILE, generate

    out = generate()
    for split, path in (("train", TRAIN_FILE), ("heldout", HELDOUT_FILE)):
        lines = path.read_text(encoding="utf-8").splitlines()
        assert [json.loads(line) for line in lines] == out[split]


# --- training ----------------------------------------------------------------------------------


def test_training_calibrates_and_sets_a_threshold_per_intent():
    """A small training run (a slice of the corpus) produces a usable, calibrated model."""
    corpus = load_corpus("train")
    small = [e for i, e in enumerate(corpus) if i % 8 == 0]
    model = train(small, version="test", folds=3)
    assert set(model.card.thresholds) >= set(AUTOMATABLE_INTENTS)
    assert 0.05 < model.card.temperature < 10
    results = classify_many([("Password reset", "I forgot my password, please reset it", None)], model=model)
    assert results[0].intent == "password_reset"


def test_labels_outside_the_closed_list_are_refused():
    example = load_corpus("train")[0]
    example.intent = "make_coffee"
    with pytest.raises(ValueError, match="closed list"):
        train([example] * 10, version="bad", folds=2)
