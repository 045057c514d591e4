import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from energyview.adapters import (
    default_sentence_model_path,
    digits_simclr_encoder,
    hf_clip_energy,
    open_clip_energy,
    sentence_energy,
    simclr_energy,
    timm_simclr_encoder,
)
from energyview.energies import CandidateSet, ContrastiveEnergy
from energyview.objectives import nt_xent_loss

SENTENCES = [
    "The striker scored twice in the second half.",
    "Whisk the eggs with the sugar until pale.",
    "A comet's tail points away from the Sun.",
    "ok",
]

TINY_OPEN_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


# ---------------------------------------------------------------------------------------------
# open_clip
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_open_clip(tmp_path_factory):
    """A tiny open_clip config registered from a JSON file, and a checkpoint with changed weights."""
    folder = tmp_path_factory.mktemp("open_clip")
    config = folder / "ev-tiny-clip.json"
    config.write_text(json.dumps(TINY_OPEN_CLIP))
    energy = open_clip_energy("ev-tiny-clip", config_file=config)
    with torch.no_grad():
        for parameter in energy.encoder_x.model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
        energy.log_scale.fill_(3.0)
    checkpoint = folder / "tiny.pt"
    torch.save(energy.encoder_x.model.state_dict(), checkpoint)
    return config, checkpoint


def direct_open_clip_energies(model, images, ids):
    with torch.no_grad():
        image_features = model.encode_image(images, normalize=True)
        text_features = model.encode_text(ids, normalize=True)
        return -(model.logit_scale.exp() * image_features @ text_features.T)


def test_open_clip_energy_matches_model_logits(tiny_open_clip):
    config, checkpoint = tiny_open_clip
    energy = open_clip_energy("ev-tiny-clip", pretrained=str(checkpoint), config_file=config)
    model = energy.encoder_x.model
    assert energy.log_scale is model.logit_scale
    assert model.logit_scale.item() == pytest.approx(3.0)  # the checkpoint's value, not the initial 2.6593
    images = torch.randn(3, 3, 32, 32)
    ids = energy.encoder_y.tokenizer(SENTENCES)
    expected = direct_open_clip_energies(model, images, ids)
    with torch.no_grad():
        torch.testing.assert_close(energy.energy_matrix(images, SENTENCES), expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(energy.energy_matrix(images, ids), expected, rtol=1e-5, atol=1e-5)


def test_open_clip_checkpoint_file_loads_its_weights(tiny_open_clip):
    config, checkpoint = tiny_open_clip
    fresh = open_clip_energy("ev-tiny-clip", config_file=config)
    loaded = open_clip_energy("ev-tiny-clip", pretrained=str(checkpoint), config_file=config)
    state = torch.load(checkpoint)
    for name, value in loaded.encoder_x.model.state_dict().items():
        torch.testing.assert_close(value, state[name])
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(fresh.energy_matrix(images, SENTENCES), loaded.energy_matrix(images, SENTENCES))


def test_open_clip_zero_shot_with_stored_prompts(tiny_open_clip):
    config, checkpoint = tiny_open_clip
    energy = open_clip_energy("ev-tiny-clip", pretrained=str(checkpoint), config_file=config)
    images = torch.randn(4, 3, 32, 32)
    energy.set_candidates(SENTENCES)
    with torch.no_grad():
        expected = direct_open_clip_energies(energy.encoder_x.model, images, energy.encoder_y.tokenizer(SENTENCES))
        torch.testing.assert_close(energy.energy_matrix(images), expected, rtol=1e-5, atol=1e-5)


def test_open_clip_bad_names_are_reported(tmp_path):
    with pytest.raises(ValueError, match="unknown open_clip model 'ViT-B-33'"):
        open_clip_energy("ViT-B-33")
    config = tmp_path / "other-name.json"
    config.write_text(json.dumps(TINY_OPEN_CLIP))
    with pytest.raises(ValueError, match="must equal the config file stem 'other-name'"):
        open_clip_energy("ev-tiny", config_file=config)
    with pytest.raises(FileNotFoundError, match="pretrained checkpoint"):
        open_clip_energy("ViT-B-32", pretrained=str(tmp_path / "missing" / "weights.pt"))


# ---------------------------------------------------------------------------------------------
# Hugging Face CLIP and SigLIP
# ---------------------------------------------------------------------------------------------

TEXT_CONFIG = dict(vocab_size=30522, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                   max_position_embeddings=40, bos_token_id=101, eos_token_id=102, pad_token_id=0)
VISION_CONFIG = dict(image_size=32, patch_size=16, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4)


def save_tiny(kind, folder):
    """Save a tiny CLIPModel or SiglipModel and a BERT tokenizer (MiniLM's, whose [SEP] is token 102)."""
    import transformers

    torch.manual_seed(0)
    if kind == "clip":
        model = transformers.CLIPModel(transformers.CLIPConfig(text_config=TEXT_CONFIG, vision_config=VISION_CONFIG, projection_dim=16))
    else:
        model = transformers.SiglipModel(transformers.SiglipConfig(text_config=TEXT_CONFIG, vision_config=VISION_CONFIG))
        with torch.no_grad():
            model.logit_scale.fill_(math.log(10.0))
            model.logit_bias.fill_(-10.0)
    model.save_pretrained(folder)
    transformers.AutoTokenizer.from_pretrained(str(default_sentence_model_path())).save_pretrained(folder)
    return model.eval()


@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_hf_energy_matches_logits_per_image(kind, tmp_path):
    model = save_tiny(kind, tmp_path)
    energy = hf_clip_energy(tmp_path)
    assert type(energy.encoder_x.model).__name__ == ("CLIPModel" if kind == "clip" else "SiglipModel")
    pixels = torch.randn(3, 3, 32, 32)
    tokens = energy.encoder_y.tokenizer(SENTENCES, padding="max_length", max_length=20, return_tensors="pt")
    with torch.no_grad():
        logits = model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"], pixel_values=pixels).logits_per_image
        energies = energy.energy_matrix(pixels, tokens)
    torch.testing.assert_close(energies, -logits, rtol=1e-5, atol=1e-5)


def test_siglip_bias_and_sigmoid_probability(tmp_path):
    model = save_tiny("siglip", tmp_path)
    energy = hf_clip_energy(tmp_path, max_length=20)
    assert energy.bias is energy.encoder_x.model.logit_bias
    assert energy.bias.item() == pytest.approx(-10.0)
    pixels = torch.randn(2, 3, 32, 32)
    tokens = energy.encoder_y.tokenizer(SENTENCES, padding="max_length", max_length=20, return_tensors="pt")
    with torch.no_grad():
        logits = model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"], pixel_values=pixels).logits_per_image
        probability = energy.match_probability(pixels, SENTENCES)  # strings: max-length padding by default
    torch.testing.assert_close(probability, torch.sigmoid(logits), rtol=1e-5, atol=1e-6)


def test_hf_clip_strings_equal_token_ids(tmp_path):
    save_tiny("clip", tmp_path)
    energy = hf_clip_energy(tmp_path)
    pixels = torch.randn(2, 3, 32, 32)
    tokens = energy.encoder_y.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(energy.energy_matrix(pixels, SENTENCES), energy.energy_matrix(pixels, tokens))


def test_hf_clip_without_tokenizer_needs_token_ids(tmp_path):
    import transformers

    transformers.CLIPModel(transformers.CLIPConfig(text_config=TEXT_CONFIG, vision_config=VISION_CONFIG)).save_pretrained(tmp_path)
    energy = hf_clip_energy(tmp_path)
    assert energy.encoder_y.tokenizer is None
    with pytest.raises(ValueError, match="loaded without a tokenizer"):
        energy.energy_matrix(torch.randn(1, 3, 32, 32), ["a caption"])
    assert energy.energy_matrix(torch.randn(1, 3, 32, 32), torch.randint(103, 999, (2, 6))).shape == (1, 2)


def test_hf_clip_missing_folder_is_reported(tmp_path):
    with pytest.raises(OSError, match="could not load a model from"):
        hf_clip_energy(tmp_path / "missing")


# ---------------------------------------------------------------------------------------------
# Sentence encoders
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference_embeddings():
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(default_sentence_model_path()), device="cpu")
    return reference.encode(SENTENCES, convert_to_numpy=True)


@pytest.mark.parametrize("backend", ["transformers", "sentence-transformers"])
def test_sentence_embeddings_equal_sentence_transformers(backend, reference_embeddings):
    energy = sentence_energy(backend=backend)
    with torch.no_grad():
        embeddings = energy.encode_x(SENTENCES).numpy()
        padded = energy.encode_x(energy.encoder_x.tokenize(SENTENCES, length=48)).numpy()
    np.testing.assert_allclose(embeddings, reference_embeddings, atol=1e-5)
    np.testing.assert_allclose(padded, reference_embeddings, atol=1e-5)


def test_sentence_energy_is_scaled_cosine(reference_embeddings):
    energy = sentence_energy(scale=20.0)
    expected = -20.0 * reference_embeddings @ reference_embeddings.T
    with torch.no_grad():
        np.testing.assert_allclose(energy.energy_matrix(SENTENCES, SENTENCES).numpy(), expected, atol=2e-4)
    assert energy.shared_encoder
    assert "log_scale" not in dict(energy.named_parameters())


def test_sentence_energy_bad_backend():
    with pytest.raises(ValueError, match="backend must be 'transformers' or 'sentence-transformers', got 'bert'"):
        sentence_energy(backend="bert")


# ---------------------------------------------------------------------------------------------
# SimCLR encoders
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [
    lambda: digits_simclr_encoder(width=8, projection_hidden=16, projection_dim=8),
    lambda: timm_simclr_encoder("test_resnet", projection_hidden=16, projection_dim=8, in_channels=1),
])
def test_simclr_encoders_train_every_parameter(build):
    torch.manual_seed(0)
    energy = simclr_energy(build(), tau=0.5)
    assert energy.scale.item() == pytest.approx(2.0)
    views = torch.randn(6, 1, 8, 8), torch.randn(6, 1, 8, 8)
    loss = nt_xent_loss(energy.encode_x(views[0]), energy.encode_x(views[1]), temperature=0.5)["loss"]
    loss.backward()
    missing = [name for name, p in energy.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert torch.isfinite(loss)
    assert missing == []


def test_digits_encoder_feature_size():
    encoder = digits_simclr_encoder(width=16, projection_dim=32)
    x = torch.randn(3, 1, 8, 8)
    assert encoder.features(x).shape == (3, 4 * 16 * 4)
    assert encoder(x).shape == (3, 32)


def test_importing_adapters_skips_heavy_libraries():
    code = (
        "import sys, energyview.adapters, energyview.tasks.contrastive; "
        "print(','.join(m for m in ('open_clip', 'transformers', 'timm', 'sentence_transformers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_candidate_set_from_adapter_embeddings(reference_embeddings):
    energy = sentence_energy()
    candidates = CandidateSet(torch.from_numpy(reference_embeddings[:2]), names=["sport", "food"])
    with torch.no_grad():
        matrix = energy.energy_matrix(SENTENCES, candidates)
    np.testing.assert_allclose(matrix.numpy(), -20.0 * reference_embeddings @ reference_embeddings[:2].T, atol=2e-4)
    assert isinstance(energy, ContrastiveEnergy)
    assert isinstance(energy.encoder_x, nn.Module)


# ---------------------------------------------------------------------------------------------
# The clip-finetune recipe
# ---------------------------------------------------------------------------------------------


def write_caption_pairs(root, count):
    """Solid-colour PNGs with captions that name the colour, as train.csv and test.csv."""
    from PIL import Image

    colours = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30)}
    for split in ("train", "test"):
        lines = ["image,caption"]
        for index in range(count):
            name = list(colours)[index % len(colours)]
            path = root / f"{split}-{index}.png"
            Image.new("RGB", (40, 40), colours[name]).save(path)
            lines.append(f"{path.name},a {name} square")
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")


def test_clip_finetune_recipe_validates():
    from energyview.recipes import load_recipe
    from energyview.tasks.contrastive import check_contrastive_recipe

    recipe = load_recipe("clip-finetune")
    check_contrastive_recipe(recipe)
    assert recipe.model.options["model_name"] == "ViT-B-32"
    assert recipe.model.options["pretrained"] == "laion2b_s34b_b79k"
    assert recipe.objective.name == "clip"


@pytest.mark.parametrize("override, message", [
    ("model.options.pretrain=x", "unknown option 'pretrain'"),
    ("objective.name=simclr", "objective.name of task 'clip-finetune' must be one of 'clip', 'siglip'"),
    ("data.name=caption-pairs", "data.name must be one of"),
])
def test_clip_finetune_recipe_rejects_bad_values(override, message):
    from energyview.recipes import RecipeError, load_recipe
    from energyview.tasks.contrastive import check_contrastive_recipe

    with pytest.raises(RecipeError, match=message):
        check_contrastive_recipe(load_recipe("clip-finetune", overrides=[override]))


def test_clip_finetune_runs_on_a_tiny_model(tiny_open_clip, tmp_path):
    from energyview.pipeline import run_recipe
    from energyview.recipes import load_recipe

    config, _ = tiny_open_clip
    data = tmp_path / "captions"
    data.mkdir()
    write_caption_pairs(data, count=8)
    overrides = [
        "model.options.model_name=ev-tiny-clip", f"model.options.config_file={config}", "model.options.pretrained=null",
        f"data.options.root={data}", "train.epochs=2", "train.batch_size=4", "train.num_workers=0", "train.warmup_steps=0",
        "train.device=cpu", "train.progress=false", "evaluation.batch_size=8",
    ]
    metrics = run_recipe(load_recipe("clip-finetune", overrides=overrides), tmp_path / "run")
    for key in ("image_to_text_top1", "text_to_image_top1", "image_to_text_top1_before", "scale"):
        assert 0.0 <= metrics[key] <= 100.0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == metrics
    assert (tmp_path / "run" / "checkpoint-last.pt").exists()
