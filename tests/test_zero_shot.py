import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from energyview.data import build_dataset, list_datasets
from energyview.data.text import TOPICS_FILE, TokenizedTextDataset, make_text_topics
from energyview.energies import ContrastiveEnergy
from energyview.ood import compute_scores, get_score, list_scores
from energyview.ood.zero_shot import class_prompts, mcm_score, prompt_candidates, set_zero_shot_classes, zero_shot_predict
from energyview.pipeline import run_recipe
from energyview.recipes import load_recipe


class BagOfWords(nn.Module):
    """Sentence -> counts of a few words, a transparent text encoder for exact checks."""

    WORDS = ("ball", "goal", "oven", "salt", "star", "moon", "sentence")

    def forward(self, texts):
        rows = [[text.lower().count(word) for word in self.WORDS] for text in texts]
        return torch.tensor(rows, dtype=torch.float64) + 0.1


def bag_model(temperature=1.0):
    return ContrastiveEnergy(BagOfWords(), init_scale=10.0, learn_scale=False, temperature=temperature).double()


# ---------------------------------------------------------------------------------------------
# Prompts and candidates
# ---------------------------------------------------------------------------------------------


def test_class_prompts_fill_every_template():
    assert class_prompts(["a", "b"], ["x {} y", "{}!"]) == [["x a y", "a!"], ["x b y", "b!"]]


@pytest.mark.parametrize("names, templates, message", [
    ("sports", ["{}"], "class_names must be a non-empty list"),
    ([], ["{}"], "class_names must be a non-empty list"),
    (["a"], [], "templates must be a non-empty list"),
    (["a"], ["no slot"], "template 'no slot' has no '{}'"),
])
def test_class_prompts_reject_bad_input(names, templates, message):
    with pytest.raises(ValueError, match=message):
        class_prompts(names, templates)


def test_prompt_ensemble_is_normalised_mean():
    model = bag_model()
    candidates = prompt_candidates(model, ["goal", "oven"], ["a sentence on {}", "{} and {}"])
    for row, name in enumerate(["goal", "oven"]):
        prompts = [f"a sentence on {name}", f"{name} and {name}"]
        units = [v / np.linalg.norm(v) for v in BagOfWords()(prompts).numpy()]
        mean = np.mean(units, axis=0)
        np.testing.assert_allclose(candidates.embeddings[row].numpy(), mean / np.linalg.norm(mean), rtol=1e-12)
    assert candidates.names == ("goal", "oven")


def test_zero_shot_predict_is_argmax_cosine():
    model = bag_model()
    set_zero_shot_classes(model, ["ball", "oven", "moon"], ["{}"])
    texts = ["the ball hit the goal", "salt the oven tray", "moon and star", "ball ball moon"]
    x = BagOfWords()(texts).numpy()
    y = BagOfWords()(["ball", "oven", "moon"]).numpy()
    cosine = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (y / np.linalg.norm(y, axis=1, keepdims=True)).T
    assert zero_shot_predict(model, texts).tolist() == cosine.argmax(axis=1).tolist()


# ---------------------------------------------------------------------------------------------
# The mcm score
# ---------------------------------------------------------------------------------------------


def test_mcm_is_registered_with_orientation():
    assert "mcm" in list_scores()
    assert get_score("mcm").higher_is_ood is False
    assert get_score("mcm").needs_input is True


@pytest.mark.parametrize("temperature", [1.0, 0.1])
def test_mcm_matches_softmax_of_cosines(temperature):
    model = bag_model()
    set_zero_shot_classes(model, ["ball", "oven", "moon"], ["{}"])
    texts = ["the ball hit the goal", "salt the oven tray", "nothing here"]
    x = BagOfWords()(texts).numpy()
    y = BagOfWords()(["ball", "oven", "moon"]).numpy()
    cosine = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (y / np.linalg.norm(y, axis=1, keepdims=True)).T
    weights = np.exp(cosine / temperature)
    expected = (weights / weights.sum(axis=1, keepdims=True)).max(axis=1)
    np.testing.assert_allclose(mcm_score(model, texts, temperature).numpy(), expected, rtol=1e-6)
    via_registry = compute_scores(model, texts, ["mcm"], temperature=temperature)["mcm"]
    np.testing.assert_allclose(via_registry.numpy(), expected, rtol=1e-6)


def test_mcm_is_msp_at_temperature_times_tau():
    model = bag_model()  # scale 10, so tau = 0.1
    set_zero_shot_classes(model, ["ball", "oven", "moon"], ["{}"])
    texts = ["the ball hit the goal", "salt the oven tray", "nothing here"]
    msp = compute_scores(model, texts, ["msp"], temperature=2.0 / 0.1)["msp"]
    torch.testing.assert_close(compute_scores(model, texts, ["mcm"], temperature=2.0)["mcm"], msp.float())


def test_mcm_needs_a_contrastive_model():
    from energyview.energies import ClassifierEnergy

    with pytest.raises(TypeError, match="the mcm score needs a contrastive model with cosine_matrix"):
        mcm_score(ClassifierEnergy(nn.Linear(2, 3)), torch.randn(2, 2))


def test_mcm_leaves_train_mode_as_it_was():
    model = bag_model()
    set_zero_shot_classes(model, ["ball", "oven"], ["{}"])
    model.train()
    mcm_score(model, ["ball"])
    assert model.training


# ---------------------------------------------------------------------------------------------
# The shipped sentence set
# ---------------------------------------------------------------------------------------------


def test_text_topics_file_is_balanced_and_unique():
    rows = [json.loads(line) for line in TOPICS_FILE.read_text().splitlines() if line.strip()]
    texts = [row["text"] for row in rows]
    assert len(texts) == len(set(texts))
    counts = {}
    for row in rows:
        counts[(row["split"], row["topic"])] = counts.get((row["split"], row["topic"]), 0) + 1
    assert {topic for split, topic in counts if split == "in"} == {"sports", "cooking", "astronomy", "finance", "gardening"}
    assert {topic for split, topic in counts if split == "ood"} == {"music", "medicine"}
    assert all(30 <= n <= 40 for (split, _), n in counts.items() if split == "in")


def test_text_topics_splits():
    assert "text-topics" in list_datasets()
    all_set = build_dataset("text-topics", split="all")
    ood = build_dataset("text-topics", split="ood")
    text, label = all_set[0]
    assert isinstance(text, str)
    assert label.dtype == torch.int64
    assert label.dim() == 0
    assert sorted(set(all_set.labels.tolist())) == [0, 1, 2, 3, 4]
    assert set(ood.labels.tolist()) == {-1}
    assert not set(all_set.texts) & set(ood.texts)
    with pytest.raises(ValueError, match="dataset 'text-topics' has no split 'train'"):
        make_text_topics("train")


def test_tokenized_dataset_checks_tokenizer_output():
    with pytest.raises(ValueError, match=r"tokenize must return token ids \[N=40, L\]"):
        TokenizedTextDataset(make_text_topics("ood"), lambda texts: torch.zeros(3, 4))


# ---------------------------------------------------------------------------------------------
# MiniLM zero-shot on the shipped sentences
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("zero-shot-text")
    metrics = run_recipe(load_recipe("text-topics", overrides=["evaluation.plots=false"]), out)
    return out, metrics


def test_zero_shot_accuracy_far_above_chance(minilm_run):
    out, metrics = minilm_run
    print(f"MiniLM zero-shot accuracy on text-topics: {metrics['accuracy']:.4f} (chance 0.2)")
    assert metrics["accuracy"] > 0.6
    assert json.loads((out / "metrics.json").read_text())["accuracy"] == metrics["accuracy"]
    assert "zero-shot accuracy" in (out / "summary.md").read_text()


def test_zero_shot_ood_metrics_match_sklearn(minilm_run):
    """Recompute the energy and MCM scores independently from sentence-transformers embeddings."""
    from sentence_transformers import SentenceTransformer

    from energyview.adapters import default_sentence_model_path

    _, metrics = minilm_run
    encoder = SentenceTransformer(str(default_sentence_model_path()), device="cpu")
    classes = make_text_topics("all").classes
    prompts = encoder.encode([f"This sentence is about {name}." for name in classes])
    in_cos = encoder.encode(make_text_topics("all").texts) @ prompts.T
    out_cos = encoder.encode(make_text_topics("ood").texts) @ prompts.T
    labels = np.r_[np.zeros(len(in_cos)), np.ones(len(out_cos))]

    def energy(cos):  # F = -logsumexp(20 cos), higher is more OOD
        z = 20.0 * cos
        top = z.max(axis=1, keepdims=True)
        return -(top[:, 0] + np.log(np.exp(z - top).sum(axis=1)))

    def mcm(cos):  # higher is more in-distribution
        weights = np.exp(cos)
        return (weights / weights.sum(axis=1, keepdims=True)).max(axis=1)

    energy_auroc = roc_auc_score(labels, np.r_[energy(in_cos), energy(out_cos)])
    mcm_auroc = roc_auc_score(labels, -np.r_[mcm(in_cos), mcm(out_cos)])
    accuracy = float((in_cos.argmax(axis=1) == make_text_topics("all").labels.numpy()).mean())
    ood = metrics["ood"]["text-topics:ood"]
    print(f"AUROC energy {ood['energy']['auroc']:.4f}, mcm {ood['mcm']['auroc']:.4f}")
    assert ood["energy"]["auroc"] == pytest.approx(energy_auroc, abs=1e-3)
    assert ood["mcm"]["auroc"] == pytest.approx(mcm_auroc, abs=1e-3)
    assert metrics["accuracy"] == pytest.approx(accuracy, abs=1e-9)
    assert mcm_auroc > 0.8

