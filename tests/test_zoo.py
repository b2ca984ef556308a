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
