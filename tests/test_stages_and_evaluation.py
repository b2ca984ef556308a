"""What the book's headline and every accuracy rest on: FitNets' two stages train what
the paper says, evaluation never touches BatchNorm's statistics, the test set is whole,
and a method's schedule sees its progress step by step."""
import dataclasses

import torch

from conftest import random_images
from hintlearn_mini import train
from hintlearn_mini.bench import recipes
from hintlearn_mini.methods import FitNets, ReviewKD
from hintlearn_mini.models import build_model
from hintlearn_mini.profiles import PROFILES, load_experiment_data, stage_one_kwargs

TINY = dataclasses.replace(PROFILES["quick"], epochs=1, batch_size=16)


def _parameters(module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def test_stage_one_trains_the_stem_and_stages_up_to_the_guided_layer_and_the_regressor_on_the_hint_alone():
    data = random_images(32)
    torch.manual_seed(0)
    teacher = build_model("resnet8").eval()
    first, parameters = recipes.FITNETS_TWO_STAGE.stage_one(TINY, teacher, build_model("resnet8"))
    assert isinstance(first, FitNets) and first.stage == 2
    _, losses = first(data.images[:8].float() / 255, data.labels[:8])
    assert set(losses) == {"hint"}, f"stage 1 trains on the hint loss alone, not {sorted(losses)}"
    student = first.student
    trained = {id(p) for m in (student.conv1, student.bn1, student.stages[0], student.stages[1], first.regressor)
               for p in m.parameters()}
    assert {id(p) for p in parameters} == trained  # exactly those, each once
    assert len(parameters) == len(trained)
    before = _parameters(student)
    train.fit(first, data, None, seed=0, parameters=parameters, progress=False, **stage_one_kwargs(TINY))
    after = _parameters(student)
    moved = {name for name in before if not torch.equal(before[name], after[name])}
    guided = {name for name in before if name.split(".")[0] in ("conv1", "bn1")
              or name.startswith(("stages.0.", "stages.1."))}
    assert moved == guided, f"stage 1 moved {sorted(moved ^ guided)} wrongly"


def test_stage_two_starts_from_the_weights_stage_one_trained(monkeypatch):
    data = random_images(32)
    torch.manual_seed(0)
    teacher = build_model("resnet8").eval()
    seen = []
    real_fit = train.fit

    def recording(module, *args, **kwargs):
        student = getattr(module, "student", module)
        seen.append(("start", {k: v.clone() for k, v in student.state_dict().items()}))
        history = real_fit(module, *args, **kwargs)
        seen.append(("end", {k: v.clone() for k, v in student.state_dict().items()}))
        return history
    monkeypatch.setattr(recipes, "fit", recording)
    recipes.train_recipe(recipes.FITNETS_TWO_STAGE, TINY, teacher, data, data, seed=0)
    (_, stage_one_start), (_, stage_one_end), (_, stage_two_start), _ = seen
    assert any(not torch.equal(stage_one_start[k], stage_one_end[k]) for k in stage_one_end)
    assert all(torch.equal(stage_one_end[k], stage_two_start[k]) for k in stage_one_end), (
        "stage 2 does not start from the student stage 1 trained")


def test_evaluation_runs_in_eval_mode_and_leaves_batchnorm_statistics_untouched():
    data = random_images(48)
    torch.manual_seed(0)
    model = build_model("resnet8").train()
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    accuracy = train.evaluate(model, data, batch_size=16)
    assert model.training, "evaluation leaves the model in the mode it found it in"
    assert all(torch.equal(buffers[k], v) for k, v in model.state_dict().items()), (
        "evaluation moved BatchNorm's running statistics")
    model.eval()
    with torch.no_grad():
        from hintlearn_mini.views import batches
        logits = torch.cat([model(x) for x, _, _ in batches(data, 16)])
    assert accuracy == 100.0 * (logits.argmax(1) == data.labels).float().mean().item()


def test_the_laptop_profile_tests_on_every_test_image(monkeypatch):
    sets = {"train": random_images(60), "test": random_images(40, seed=1)}
    monkeypatch.setattr("hintlearn_mini.data.load_cifar", lambda name, split, root=None: sets[split])
    laptop = dataclasses.replace(PROFILES["laptop"], train_per_class=2)
    train_set, test_set = load_experiment_data(laptop)
    assert len(train_set) == 20 and test_set is sets["test"]  # all 40, not a subset


def test_a_distiller_sees_its_progress_at_every_step_from_zero():
    data = random_images(32)
    torch.manual_seed(0)
    distiller = ReviewKD(build_model("resnet8"), build_model("resnet8"))
    seen = []
    real = distiller.set_progress
    distiller.set_progress = lambda fraction: seen.append(fraction) or real(fraction)
    train.fit(distiller, data, None, epochs=2, batch_size=16, progress=False)
    assert seen == [0.0, 0.25, 0.5, 0.75]  # 2 steps an epoch, 2 epochs: per step, from 0


def test_reviewkds_warm_up_starts_at_zero_and_reaches_the_full_weight():
    data = random_images(8)
    torch.manual_seed(0)
    distiller = ReviewKD(build_model("resnet8"), build_model("resnet8"), weight=1.0, warmup=0.5)
    x, y = data.images.float() / 255, data.labels
    distiller.set_progress(0.0)
    assert distiller(x, y)[1]["hcl"].item() == 0.0
    distiller.set_progress(0.25)
    half = distiller(x, y)[1]["hcl"].item()
    distiller.set_progress(0.75)
    full = distiller(x, y)[1]["hcl"].item()
    assert full > 0 and abs(half - full / 2) <= 1e-4 * full
