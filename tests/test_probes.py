"""How well a FitNets regressor predicts the teacher's hint (chapter 3)."""
import pytest
import torch

from conftest import random_images
from hintlearn_mini.views import normalize
from hintlearn_mini.methods import FitNets
from hintlearn_mini.models import build_model
from hintlearn_mini.probes import explained_variance, hint_prediction


def test_explained_variance_of_a_copy_the_mean_and_a_hand_case():
    target = torch.tensor([[1.0, 2.0], [3.0, 6.0]])  # element means 2 and 4: SST = 1 + 1 + 4 + 4
    assert explained_variance(target.clone(), target) == 1.0
    assert explained_variance(target.mean(0, keepdim=True).expand(2, 2), target) == 0.0
    predicted = torch.tensor([[1.0, 3.0], [3.0, 5.0]])  # SSE = 2: R² = 1 - 2/10
    assert explained_variance(predicted, target) == pytest.approx(0.8)
    with pytest.raises(ValueError, match=r"prediction has shape \(2, 2\) and the target \(2, 3\)"):
        explained_variance(predicted, torch.zeros(2, 3))


def test_hint_prediction_is_the_regressed_guided_layer_in_eval_mode_and_restores_modes():
    torch.manual_seed(0)
    distiller = FitNets(build_model("resnet8"), build_model("resnet8").eval())
    distiller.train()
    data = random_images(12)
    predicted, hint = hint_prediction(distiller, data, batch_size=5)
    assert predicted.shape == hint.shape == (12, 32, 16, 16)
    assert distiller.student.training and distiller.regressor.training
    distiller.eval()
    with torch.no_grad():
        _, feats = distiller.student(normalize(data.images, data.name), features=True)
        _, teacher_feats = distiller.teacher(normalize(data.images, data.name), features=True)
        expected = distiller.regressor(feats.stages[1])
    torch.testing.assert_close(predicted, expected)
    torch.testing.assert_close(hint, teacher_feats.stages[1])
