import collections

import pytest
import torch
from torch import nn

from energyview.adapters import (
    create_timm_network,
    select_output,
    timm_classifier_energy,
    transformers_classifier_energy,
)
from energyview.energies import ClassifierEnergy

Outputs = collections.namedtuple("Outputs", ["logits", "aux"])
Unnamed = collections.namedtuple("Unnamed", ["main", "aux"])


class Wrapped(nn.Module):
    """Same weights, different output containers."""

    def __init__(self, kind):
        super().__init__()
        torch.manual_seed(3)
        self.body = nn.Linear(5, 4)
        self.kind = kind

    def forward(self, x):
        logits = self.body(x)
        if self.kind == "tensor":
            return logits
        if self.kind == "dict":
            return {"features": x, "logits": logits}
        if self.kind == "namedtuple":
            return Outputs(logits, logits * 0)
        if self.kind == "unnamed":
            return Unnamed(logits, logits * 0)
        if self.kind == "model_output":
            from transformers.modeling_outputs import SequenceClassifierOutput

            return SequenceClassifierOutput(logits=logits, hidden_states=None)
        raise AssertionError(self.kind)


@pytest.mark.parametrize("kind", ["dict", "namedtuple", "unnamed", "model_output"])
def test_output_containers_give_same_energies(kind):
    x = torch.randn(6, 5)
    reference = ClassifierEnergy(Wrapped("tensor"))
    wrapped = ClassifierEnergy(Wrapped(kind))
    assert torch.equal(wrapped.energy_matrix(x), reference.energy_matrix(x))
    assert torch.equal(wrapped.free_energy(x), reference.free_energy(x))


def test_googlenet_aux_outputs_in_train_mode():
    from torchvision.models import googlenet

    torch.manual_seed(0)
    net = googlenet(weights=None, aux_logits=True, init_weights=False, num_classes=5)
    net.train()
    x = torch.randn(2, 3, 64, 64)
    raw = net(x)
    assert type(raw).__name__ == "GoogLeNetOutputs"
    model = ClassifierEnergy(net)
    torch.manual_seed(1)
    energies = model.energy_matrix(x)
    torch.manual_seed(1)
    assert torch.equal(energies, -net(x).logits)


def test_unknown_output_names_type_and_fix():
    class Weird(nn.Module):
        def forward(self, x):
            return {"hidden": x}

    with pytest.raises(TypeError, match=r"cannot find the logits in a model output of type dict \(fields: \['hidden'\]\).*output_key"):
        ClassifierEnergy(Weird()).energy_matrix(torch.randn(2, 3))


def test_output_key_points_at_logits():
    class Weird(nn.Module):
        def forward(self, x):
            return {"hidden": x, "class_scores": x[:, :2]}

    x = torch.randn(3, 4)
    by_name = ClassifierEnergy(Weird(), output_key="class_scores").energy_matrix(x)
    by_callable = ClassifierEnergy(Weird(), output_key=lambda out: out["class_scores"]).energy_matrix(x)
    assert torch.equal(by_name, -x[:, :2])
    assert torch.equal(by_callable, -x[:, :2])
    with pytest.raises(TypeError, match="has no field 'nope'"):
        select_output({"a": x}, "nope")


def test_timm_model_from_config():
    energy = timm_classifier_energy("test_resnet", num_classes=3)
    out = energy.energy_matrix(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 3)
    assert torch.isfinite(out).all()


def test_timm_unknown_name_suggests():
    with pytest.raises(ValueError, match="unknown timm model 'test_resnett'"):
        create_timm_network("test_resnett")


def test_timm_checkpoint_path_loads_local_weights(tmp_path):
    source = create_timm_network("test_resnet", num_classes=3)
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    loaded = timm_classifier_energy("test_resnet", num_classes=3, checkpoint_path=str(path))
    x = torch.randn(2, 3, 32, 32)
    source.eval()
    loaded.eval()
    assert torch.equal(loaded.energy_matrix(x), -source(x))


def test_timm_pretrained_cfg_overlay_loads_local_file(tmp_path):
    from safetensors.torch import save_file

    source = create_timm_network("test_resnet", num_classes=3)
    path = tmp_path / "model.safetensors"
    save_file(source.state_dict(), str(path))
    loaded = timm_classifier_energy(
        "test_resnet", pretrained=True, num_classes=3, pretrained_cfg_overlay={"file": str(path), "num_classes": 3}
    )
    x = torch.randn(2, 3, 32, 32)
    source.eval()
    loaded.eval()
    torch.testing.assert_close(loaded.energy_matrix(x), -source(x))


def _tiny_text_classifier(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, num_labels=3, max_position_embeddings=32)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(tmp_path)
    return model


def test_transformers_from_local_directory(tmp_path):
    source = _tiny_text_classifier(tmp_path)
    energy = transformers_classifier_energy(str(tmp_path), auto_class="AutoModelForSequenceClassification").eval()
    inputs = {"input_ids": torch.randint(0, 50, (2, 7)), "attention_mask": torch.ones(2, 7, dtype=torch.long)}
    torch.testing.assert_close(energy.energy_matrix(inputs), -source(**inputs).logits)


def test_transformers_missing_directory_names_fix(tmp_path):
    with pytest.raises(OSError, match="save_pretrained"):
        transformers_classifier_energy(str(tmp_path / "missing"), auto_class="AutoModelForSequenceClassification")


def test_transformers_unknown_class():
    with pytest.raises(ValueError, match="no model class 'AutoModelForNothing'"):
        transformers_classifier_energy("x", auto_class="AutoModelForNothing")
