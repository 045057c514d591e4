"""In-batch contrastive losses against brute-force float64 loops, in value and in gradient."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from energyview.objectives.contrastive import (
    CLIPObjective,
    SigLIPObjective,
    SimCLRObjective,
    SupConObjective,
    clip_loss,
    info_nce_from_energy,
    nt_xent_loss,
    positive_mask_from_ids,
    sigmoid_loss_from_energy,
    siglip_loss,
    similarity_energy_matrix,
    supcon_loss,
)

TOL = 1e-5


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


# ---------------------------------------------------------------------------------------------
# Brute-force references: explicit loops over anchors, exp and log written out, float64 inputs.
# ---------------------------------------------------------------------------------------------


def cosine(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (u * v).sum() / (u.norm() * v.norm())


def reference_clip(img, txt, scale, positive=None):
    n = img.shape[0]
    positive = torch.eye(n, dtype=torch.bool) if positive is None else positive
    total = 0.0
    for i in range(n):  # image i against every text
        logits = [scale * cosine(img[i], txt[j]) for j in range(n)]
        denominator = sum(torch.exp(value) for value in logits)
        numerator = sum(torch.exp(logits[j]) for j in range(n) if positive[i, j])
        total = total - torch.log(numerator / denominator)
    for j in range(n):  # text j against every image
        logits = [scale * cosine(txt[j], img[i]) for i in range(n)]
        denominator = sum(torch.exp(value) for value in logits)
        numerator = sum(torch.exp(logits[i]) for i in range(n) if positive[i, j])
        total = total - torch.log(numerator / denominator)
    return total / (2 * n)


def reference_nt_xent(z1, z2, tau):
    views = list(z1) + list(z2)
    n = z1.shape[0]
    total = 0.0
    for i in range(2 * n):
        partner = i + n if i < n else i - n
        denominator = sum(torch.exp(cosine(views[i], views[k]) / tau) for k in range(2 * n) if k != i)
        total = total - torch.log(torch.exp(cosine(views[i], views[partner]) / tau) / denominator)
    return total / (2 * n)


def reference_supcon(features, labels, tau, base_tau):
    n, v, _ = features.shape
    anchors = [(i, k) for i in range(n) for k in range(v)]
    label_of = (lambda i: i) if labels is None else (lambda i: int(labels[i]))
    per_anchor = []
    for a, (i, k) in enumerate(anchors):
        others = [b for b in range(len(anchors)) if b != a]
        positives = [b for b in others if label_of(anchors[b][0]) == label_of(i)]
        if not positives:
            continue
        anchor = features[i, k]
        denominator = sum(torch.exp(cosine(anchor, features[anchors[b]]) / tau) for b in others)
        log_probs = [torch.log(torch.exp(cosine(anchor, features[anchors[p]]) / tau) / denominator) for p in positives]
        per_anchor.append(-(tau / base_tau) * sum(log_probs) / len(positives))
    return sum(per_anchor) / len(per_anchor)


def reference_siglip(img, txt, scale, bias, positive=None):
    n = img.shape[0]
    positive = torch.eye(n, dtype=torch.bool) if positive is None else positive
    total = 0.0
    for i in range(n):
        for j in range(n):
            z = 1.0 if positive[i, j] else -1.0
            logit = scale * cosine(img[i], txt[j]) + bias
            total = total - torch.log(1.0 / (1.0 + torch.exp(-z * logit)))
    return total / n


def float64_leaves(*shapes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=generator, dtype=torch.float64).requires_grad_() for shape in shapes]


def assert_value_and_grad(loss, reference, inputs):
    assert abs(loss.item() - reference.item()) < TOL, (loss.item(), reference.item())
    grads = torch.autograd.grad(loss, inputs)
    expected = torch.autograd.grad(reference, inputs)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, atol=TOL, rtol=0)


# ---------------------------------------------------------------------------------------------
# Value and gradient against the references
# ---------------------------------------------------------------------------------------------


def test_clip_matches_brute_force():
    img, txt = float64_leaves((6, 5), (6, 5))
    scale = torch.tensor(7.0, dtype=torch.float64, requires_grad=True)
    loss = clip_loss(img, txt, scale)["loss"]
    assert_value_and_grad(loss, reference_clip(img, txt, scale), (img, txt, scale))


def test_clip_duplicates_are_positives():
    img, txt = float64_leaves((6, 4), (6, 4), seed=1)
    ids = torch.tensor([3, 1, 3, 0, 1, 5])
    mask = positive_mask_from_ids(ids)
    loss = clip_loss(img, txt, 4.0, positive_mask=mask)["loss"]
    assert_value_and_grad(loss, reference_clip(img, txt, 4.0, mask), (img, txt))

    diagonal_only = clip_loss(img, txt, 4.0)["loss"]
    assert abs(loss.item() - diagonal_only.item()) > 1e-3  # the duplicates really changed the loss


def test_clip_symmetric_in_swap():
    img, txt = float64_leaves((5, 3), (5, 3), seed=2)
    mask = positive_mask_from_ids(torch.tensor([0, 1, 0, 2, 3]))
    forward = clip_loss(img, txt, 3.0, positive_mask=mask)["loss"]
    swapped = clip_loss(txt, img, 3.0, positive_mask=mask.T)["loss"]
    assert abs(forward.item() - swapped.item()) < 1e-12


def test_nt_xent_matches_brute_force():
    z1, z2 = float64_leaves((5, 4), (5, 4), seed=3)
    loss = nt_xent_loss(z1, z2, temperature=0.3)["loss"]
    assert_value_and_grad(loss, reference_nt_xent(z1, z2, 0.3), (z1, z2))


@pytest.mark.parametrize("labels", [[0, 1, 0, 2, 1], None], ids=["labels", "instances"])
def test_supcon_two_views_match_brute_force(labels):
    (features,) = float64_leaves((5, 2, 4), seed=4)
    labels = None if labels is None else torch.tensor(labels)
    loss = supcon_loss(features, labels, temperature=0.2, base_temperature=0.07)["loss"]
    assert_value_and_grad(loss, reference_supcon(features, labels, 0.2, 0.07), (features,))


def test_supcon_single_view_skips_lonely_anchors():
    (features,) = float64_leaves((4, 1, 3), seed=5)
    labels = torch.tensor([0, 1, 1, 3])  # anchors 0 and 3 have no positive
    loss = supcon_loss(features, labels, temperature=0.5)["loss"]
    assert torch.isfinite(loss)
    assert_value_and_grad(loss, reference_supcon(features, labels, 0.5, 0.5), (features,))


def test_supcon_randn_single_view_finite():
    features = torch.randn(4, 1, 3, requires_grad=True)
    loss = supcon_loss(features, torch.tensor([0, 1, 1, 3]))["loss"]
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(features.grad).all()


def test_supcon_without_positives_raises():
    with pytest.raises(ValueError, match="no positive pair"):
        supcon_loss(torch.randn(3, 1, 4), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="no positive pair"):
        supcon_loss(torch.randn(3, 1, 4), None)


def test_siglip_matches_brute_force():
    img, txt = float64_leaves((5, 4), (5, 4), seed=6)
    scale = torch.tensor(6.0, dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(-2.5, dtype=torch.float64, requires_grad=True)
    loss = siglip_loss(img, txt, scale, bias)["loss"]
    assert_value_and_grad(loss, reference_siglip(img, txt, scale, bias), (img, txt, scale, bias))


def test_siglip_duplicates_are_positives():
    img, txt = float64_leaves((5, 4), (5, 4), seed=7)
    mask = positive_mask_from_ids(torch.tensor([2, 2, 0, 1, 0]))
    loss = siglip_loss(img, txt, 10.0, -10.0, positive_mask=mask)["loss"]
    assert_value_and_grad(loss, reference_siglip(img, txt, 10.0, -10.0, mask), (img, txt))


def test_siglip_symmetric_in_swap():
    img, txt = float64_leaves((4, 3), (4, 3), seed=8)
    forward = siglip_loss(img, txt, 10.0, -10.0)["loss"]
    swapped = siglip_loss(txt, img, 10.0, -10.0)["loss"]
    assert abs(forward.item() - swapped.item()) < 1e-12


# ---------------------------------------------------------------------------------------------
# Closed forms
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 8, 16])
def test_equal_embeddings_give_log_candidates(n):
    same = torch.ones(n, 3)
    clip_value = clip_loss(same, same, 50.0)["loss"].item()
    nt_xent_value = nt_xent_loss(same, same, 0.1)["loss"].item()
    assert abs(clip_value - math.log(n)) < TOL
    assert abs(nt_xent_value - math.log(2 * n - 1)) < TOL


def test_energy_matrix_is_negative_scaled_cosine():
    a, b = float64_leaves((3, 4), (5, 4), seed=9)
    matrix = similarity_energy_matrix(a, b, 2.5)
    assert matrix.shape == (3, 5)
    for i in range(3):
        for j in range(5):
            assert abs(matrix[i, j].item() + 2.5 * cosine(a[i], b[j]).item()) < 1e-12


def test_losses_reduce_the_energy_matrix():
    img, txt = float64_leaves((4, 3), (4, 3), seed=10)
    energy = similarity_energy_matrix(img, txt, 5.0)
    assert info_nce_from_energy(energy)["loss"].item() == clip_loss(img, txt, 5.0)["loss"].item()
    assert sigmoid_loss_from_energy(energy, -1.0)["loss"].item() == siglip_loss(img, txt, 5.0, -1.0)["loss"].item()


def test_phase_energies_are_pair_means():
    img, txt = float64_leaves((4, 3), (4, 3), seed=11)
    out = clip_loss(img, txt, 5.0)
    diagonal = [-5.0 * cosine(img[i], txt[i]).item() for i in range(4)]
    off_diagonal = [-5.0 * cosine(img[i], txt[j]).item() for i in range(4) for j in range(4) if i != j]
    assert abs(out["energy_pos"].item() - sum(diagonal) / 4) < 1e-12
    assert abs(out["energy_neg"].item() - sum(off_diagonal) / 12) < 1e-12
    assert not out["energy_pos"].requires_grad


def test_nt_xent_phases_exclude_self():
    z1, z2 = float64_leaves((3, 4), (3, 4), seed=12)
    out = nt_xent_loss(z1, z2, 0.5)
    views = list(z1) + list(z2)
    pairs = [(i, k) for i in range(6) for k in range(6) if i != k]
    positive = [-cosine(views[i], views[k]).item() / 0.5 for i, k in pairs if abs(i - k) == 3]
    negative = [-cosine(views[i], views[k]).item() / 0.5 for i, k in pairs if abs(i - k) != 3]
    assert abs(out["energy_pos"].item() - sum(positive) / len(positive)) < 1e-12
    assert abs(out["energy_neg"].item() - sum(negative) / len(negative)) < 1e-12


# ---------------------------------------------------------------------------------------------
# Numerics
# ---------------------------------------------------------------------------------------------

LOW_PRECISION = [torch.float16, torch.bfloat16]


@pytest.mark.parametrize("dtype", LOW_PRECISION)
def test_huge_scale_is_clamped(dtype):
    img = torch.randn(6, 8).to(dtype)
    txt = torch.randn(6, 8).to(dtype)
    for loss_fn, extra in ((clip_loss, ()), (siglip_loss, (-10.0,))):
        huge = loss_fn(img, txt, 1e4, *extra)["loss"]
        clamped = loss_fn(img, txt, 100.0, *extra)["loss"]
        assert huge.dtype == torch.float32
        assert torch.isfinite(huge)
        assert huge.item() == clamped.item()


@pytest.mark.parametrize("dtype", LOW_PRECISION + [torch.float32])
def test_zero_embedding_gives_finite_loss(dtype):
    img = torch.randn(4, 8).to(dtype)
    txt = torch.randn(4, 8).to(dtype)
    img[1] = 0
    txt[2] = 0
    img.requires_grad_()
    results = {
        "clip": clip_loss(img, txt, 100.0)["loss"],
        "siglip": siglip_loss(img, txt, 100.0, -10.0)["loss"],
        "nt_xent": nt_xent_loss(img, txt, 0.01)["loss"],
        "supcon": supcon_loss(torch.stack([img, txt], dim=1), torch.tensor([0, 1, 0, 2]), 0.01)["loss"],
    }
    for name, loss in results.items():
        assert torch.isfinite(loss), name
        (grad,) = torch.autograd.grad(loss, img)
        assert torch.isfinite(grad).all(), name


def test_low_precision_matches_float32_on_same_values():
    img = torch.randn(8, 16).to(torch.bfloat16)
    txt = torch.randn(8, 16).to(torch.bfloat16)
    low = clip_loss(img, txt, 30.0)["loss"]
    high = clip_loss(img.float(), txt.float(), 30.0)["loss"]
    assert abs(low.item() - high.item()) < 1e-5


def test_autocast_keeps_float32():
    encoder = nn.Linear(8, 6)
    x, y = torch.randn(5, 8), torch.randn(5, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fx, fy = encoder(x), encoder(y)
        assert fx.dtype == torch.bfloat16
        under_autocast = clip_loss(fx, fy, 20.0)["loss"]
    assert under_autocast.dtype == torch.float32
    assert abs(under_autocast.item() - clip_loss(fx.float(), fy.float(), 20.0)["loss"].item()) < 1e-5


# ---------------------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------------------


def test_batch_of_one_raises():
    single = torch.randn(1, 4)
    with pytest.raises(ValueError, match="batch of at least 2, got 1"):
        clip_loss(single, single, 10.0)
    with pytest.raises(ValueError, match="batch of at least 2, got 1"):
        siglip_loss(single, single, 10.0, -10.0)
    with pytest.raises(ValueError, match="batch of at least 2, got 1"):
        nt_xent_loss(single, single, 0.5)
    with pytest.raises(ValueError, match="batch of at least 2, got 1"):
        supcon_loss(torch.randn(1, 1, 4), torch.tensor([0]))


def test_shape_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"\(4, 3\) and \(5, 3\)"):
        clip_loss(torch.randn(4, 3), torch.randn(5, 3), 10.0)
    with pytest.raises(ValueError, match=r"\(4, 3\) and \(4, 2\)"):
        nt_xent_loss(torch.randn(4, 3), torch.randn(4, 2), 0.5)
    with pytest.raises(ValueError, match=r"\[N, V, D\], got shape \(4, 3\)"):
        supcon_loss(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match=r"labels must have shape \[4\]"):
        supcon_loss(torch.randn(4, 2, 3), torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match=r"positive_mask must have shape \[4, 4\]"):
        clip_loss(torch.randn(4, 3), torch.randn(4, 3), 10.0, positive_mask=torch.ones(3, 3, dtype=torch.bool))


def test_invalid_scale_raises():
    a = torch.randn(3, 4)
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        clip_loss(a, a, -2.0)
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        clip_loss(a, a, float("nan"))
    with pytest.raises(ValueError, match="scale must be a scalar"):
        clip_loss(a, a, torch.ones(2))
    with pytest.raises(ValueError, match="bias must be finite"):
        siglip_loss(a, a, 10.0, float("inf"))
    with pytest.raises(ValueError, match="temperature must be finite and > 0"):
        nt_xent_loss(a, a, 0.0)


def test_mask_row_without_positive_raises():
    mask = torch.eye(3, dtype=torch.bool)
    mask[1, 1] = False
    with pytest.raises(ValueError, match="row 1 has no positive"):
        clip_loss(torch.randn(3, 4), torch.randn(3, 4), 10.0, positive_mask=mask)


def test_bad_ids_raise():
    with pytest.raises(TypeError, match="ids_a must hold integers"):
        positive_mask_from_ids(torch.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match="floating-point"):
        clip_loss(torch.ones(2, 3, dtype=torch.long), torch.ones(2, 3, dtype=torch.long), 10.0)


# ---------------------------------------------------------------------------------------------
# Objectives on a minimal model
# ---------------------------------------------------------------------------------------------


class TinyPairModel(nn.Module):
    """Two linear encoders and a learnable log scale, the interface the objectives expect."""

    def __init__(self, log_scale: float = math.log(1 / 0.07)) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.x_encoder = nn.Linear(4, 3)
        self.y_encoder = nn.Linear(5, 3)
        self.log_scale = nn.Parameter(torch.tensor(log_scale))

    def encode_x(self, x):
        return self.x_encoder(x)

    def encode_y(self, y):
        return self.y_encoder(y)

    @property
    def scale(self):
        return self.log_scale.clamp(max=math.log(100)).exp()


def test_clip_objective_equals_function():
    model = TinyPairModel()
    x, y, ids = torch.randn(6, 4), torch.randn(6, 5), torch.tensor([0, 1, 2, 0, 3, 4])
    out = CLIPObjective()(model, (x, y, ids))
    expected = clip_loss(model.encode_x(x), model.encode_y(y), model.scale, positive_mask=positive_mask_from_ids(ids))
    assert out["loss"].item() == expected["loss"].item()
    out["loss"].backward()
    assert model.log_scale.grad is not None and model.log_scale.grad.item() != 0.0
    assert abs(out["scale"].item() - 1 / 0.07) < 1e-4


def test_siglip_objective_learns_bias():
    model = TinyPairModel(log_scale=math.log(10))
    objective = SigLIPObjective()
    assert objective.bias.item() == -10.0
    assert [name for name, _ in objective.named_parameters()] == ["bias"]
    x, y = torch.randn(5, 4), torch.randn(5, 5)
    out = objective(model, (x, y))
    expected = siglip_loss(model.encode_x(x), model.encode_y(y), 10.0, -10.0)
    assert abs(out["loss"].item() - expected["loss"].item()) < 1e-5
    out["loss"].backward()
    assert objective.bias.grad is not None and objective.bias.grad.item() != 0.0


def test_simclr_objective_batch_formats():
    model = TinyPairModel()
    v1, v2 = torch.randn(4, 4), torch.randn(4, 4)
    plain = SimCLRObjective(temperature=0.5)(model, (v1, v2))
    labelled = SimCLRObjective(temperature=0.5)(model, ((v1, v2), torch.tensor([0, 1, 0, 1])))
    expected = nt_xent_loss(model.encode_x(v1), model.encode_x(v2), 0.5)
    assert plain["loss"].item() == expected["loss"].item()
    assert labelled["loss"].item() == expected["loss"].item()


def test_supcon_objective_stacks_views():
    model = TinyPairModel()
    views = (torch.randn(4, 4), torch.randn(4, 4), torch.randn(4, 4))
    labels = torch.tensor([1, 0, 1, 2])
    out = SupConObjective(temperature=0.2)(model, (views, labels))
    features = torch.stack([model.encode_x(v) for v in views], dim=1)
    assert out["loss"].item() == supcon_loss(features, labels, 0.2)["loss"].item()


def test_objective_rejects_model_without_encoders():
    with pytest.raises(TypeError, match="no encode_x"):
        CLIPObjective()(nn.Linear(4, 3), (torch.randn(3, 4), torch.randn(3, 4)))
    with pytest.raises(ValueError, match="exactly 2 views"):
        SimCLRObjective()(TinyPairModel(), ((torch.randn(3, 4),) * 3, None))
