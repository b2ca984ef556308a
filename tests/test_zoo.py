import shutil

import pytest
import torch

from hintlearn_mini.checkpoints import CheckpointError, sha256_of
from hintlearn_mini.zoo import WEIGHTS, load_teacher, teacher_manifest


def test_shipped_teacher_matches_its_manifest():
    manifest = teacher_manifest()
    assert manifest["recipe"]["arch"] == "resnet32"
    assert sha256_of(WEIGHTS / manifest["file"]) == manifest["sha256"]
    assert 50 < manifest["test_accuracy"] <= 100
    assert {"train_seconds", "device", "recipe", "test_images"} <= set(manifest)
    teacher = load_teacher()
    assert not teacher.training
    assert teacher(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_corrupt_teacher_copy_is_refused(tmp_path):
    for f in WEIGHTS.iterdir():
        shutil.copy(f, tmp_path / f.name)
    manifest = teacher_manifest()
    path = tmp_path / manifest["file"]
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_teacher(folder=tmp_path)


def test_unknown_teacher_lists_available(tmp_path):
    with pytest.raises(FileNotFoundError, match="resnet32_cifar10"):
        teacher_manifest("resnet99_cifar10")


def test_retraining_writes_a_loadable_teacher_and_manifest(image_folder, tmp_path):
    from hintlearn_mini.zoo import TEACHER_RECIPE, train_teacher
    recipe = dict(TEACHER_RECIPE, arch="resnet8", epochs=1, batch_size=6)
    manifest = train_teacher(recipe, out=tmp_path / "zoo", device="cpu", data_root=str(image_folder),
                             name="tiny_teacher")
    assert manifest["num_classes"] == 3 and manifest["test_images"] == 6
    assert (tmp_path / "zoo" / "tiny_teacher.json").is_file()
    teacher = load_teacher("tiny_teacher", folder=tmp_path / "zoo")
    assert teacher(torch.zeros(1, 3, 32, 32)).shape == (1, 3)


def test_torchvision_models_are_built_by_name_and_stored_in_half_precision(tmp_path):
    import torch

    from hintlearn_mini.checkpoints import load_checkpoint, save_checkpoint
    from hintlearn_mini.models import build_model

    model = build_model("torchvision.mobilenet_v3_small")
    assert type(model).__name__ == "MobileNetV3" and model.classifier[-1].out_features == 10
    with pytest.raises(ValueError, match="close matches"):
        build_model("torchvision.mobilenet_v3_smal")
    full = tmp_path / "full.pt"
    half = tmp_path / "half.pt"
    save_checkpoint(model, full, "torchvision.mobilenet_v3_small")
    sha = save_checkpoint(model, half, "torchvision.mobilenet_v3_small", dtype=torch.float16)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    again = build_model("torchvision.mobilenet_v3_small")
    load_checkpoint(again, half, sha256=sha)
    w, w_again = model.features[0][0].weight, again.features[0][0].weight
    assert w_again.dtype == torch.float32 and torch.allclose(w, w_again, atol=1e-3, rtol=1e-3)


def test_shipped_teachers_match_their_recipes():
    from hintlearn_mini.zoo import SHIPPED_TEACHERS

    for name, recipe in SHIPPED_TEACHERS.items():
        manifest = teacher_manifest(name)
        assert manifest["recipe"] == recipe, f"{name}: the shipped manifest was made with another recipe"


def test_the_standard_teacher_never_sees_the_validation_split_and_resumes(monkeypatch, tmp_path):
    from conftest import random_images
    from hintlearn_mini import data, train, zoo

    full, test = random_images(5200), random_images(40, seed=1)  # 520 a class: 200 outside validation
    monkeypatch.setattr(zoo, "load_cifar", lambda name, split, root=None: full if split == "train" else test)
    seen = []
    real_fit = train.fit

    def recording_fit(model, train_set, *args, **kwargs):
        seen.append((train_set, kwargs["checkpoint"]))
        return real_fit(model, train_set, *args, **kwargs)
    monkeypatch.setattr(zoo, "fit", recording_fit)
    recipe = dict(zoo.STANDARD_TEACHER_RECIPE, arch="resnet8", epochs=2, batch_size=50)
    manifest = zoo.train_teacher(recipe, out=tmp_path, name="standard")
    (trained_on, checkpoint), = seen
    _, validation = data.split_validation(full)
    images = lambda subset: {bytes(i.numpy()) for i in subset.images}  # noqa: E731
    assert len(trained_on) == 200 and not images(trained_on) & images(validation)
    assert manifest["validation_images"] == 5000 and 0 <= manifest["validation_accuracy"] <= 100
    assert manifest["test_accuracy_per_epoch"] == [None, manifest["test_accuracy"]]  # evaluated every 10
    assert checkpoint == tmp_path / ".standard.training.pt" and not checkpoint.exists()  # removed when done
    assert load_teacher("standard", folder=tmp_path)(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
