import pytest
import torch

from conftest import random_images
from hintlearn_mini.data import DataNotFoundError, ImageSet, balanced_subset, load_cifar
from hintlearn_mini.views import augment, batches, normalize


def test_imagefolder_is_decoded_then_cached(image_folder, tmp_path):
    train = load_cifar("cifar10", "train", root=image_folder)
    assert train.images.shape == (12, 3, 32, 32) and train.images.dtype == torch.uint8
    assert train.classes == ["cat", "dog", "frog"]
    assert train.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    cached = list((tmp_path / "cache").glob("cifar10-train-*.pt"))
    assert len(cached) == 1
    again = load_cifar("cifar10", "train", root=image_folder)
    assert torch.equal(again.images, train.images)
    assert len(load_cifar("cifar10", "test", root=image_folder)) == 6


def test_root_from_environment_variable(image_folder, monkeypatch):
    monkeypatch.setenv("HINTLEARN_DATA", str(image_folder))
    assert len(load_cifar("cifar10", "train")) == 12


def test_missing_data_lists_the_paths_searched_and_both_fixes(tmp_path):
    with pytest.raises(DataNotFoundError) as error:
        load_cifar("cifar10", "train", root=tmp_path / "nowhere")
    message = str(error.value)
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in message
    assert str(tmp_path / "nowhere" / "cifar10-jpeg") in message
    assert "HINTLEARN_DATA" in message and "download=True" in message


def test_bad_names_are_rejected(image_folder):
    with pytest.raises(ValueError, match="cifar100"):
        load_cifar("mnist", root=image_folder)
    with pytest.raises(ValueError, match="'train', 'test'"):
        load_cifar("cifar10", "val", root=image_folder)


def test_balanced_subset_is_balanced_and_deterministic(tiny_set):
    a = balanced_subset(tiny_set, 3, seed=1)
    b = balanced_subset(tiny_set, 3, seed=1)
    c = balanced_subset(tiny_set, 3, seed=2)
    assert torch.bincount(a.labels).tolist() == [3] * 10
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.images, c.images)
    with pytest.raises(ValueError, match="has only"):
        balanced_subset(tiny_set, 100)


def test_augment_crops_and_flips_whole_batches():
    images = torch.arange(2 * 3 * 32 * 32, dtype=torch.int64).view(2, 3, 32, 32).to(torch.uint8)
    out = augment(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.uint8
    again = augment(images, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_augment_crop_is_a_shift_of_the_padded_image():
    image = torch.randint(1, 255, (1, 3, 32, 32), dtype=torch.uint8)
    for seed in range(10):
        out = augment(image, torch.Generator().manual_seed(seed))[0]
        padded = torch.nn.functional.pad(image[0], (4, 4, 4, 4))
        found = any(torch.equal(out, padded[:, dy:dy + 32, dx:dx + 32]) or
                    torch.equal(out, padded[:, dy:dy + 32, dx:dx + 32].flip(2))
                    for dy in range(9) for dx in range(9))
        assert found


def test_batches_carry_dataset_indices_and_cover_every_sample(tiny_set):
    seen = []
    for x, y, index in batches(tiny_set, 10, train=True, seed=0, epoch=3):
        assert x.dtype == torch.float32 and x.shape[1:] == (3, 32, 32)
        assert torch.equal(y, tiny_set.labels[index])
        seen += index.tolist()
    assert sorted(seen) == list(range(len(tiny_set)))
    first = [i.tolist() for *_, i in batches(tiny_set, 10, train=True, seed=0, epoch=3)]
    other = [i.tolist() for *_, i in batches(tiny_set, 10, train=True, seed=0, epoch=4)]
    assert first == [i.tolist() for *_, i in batches(tiny_set, 10, train=True, seed=0, epoch=3)]
    assert first != other


def test_normalize_standardises_channels():
    images = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    out = normalize(images)
    assert out.dtype == torch.float32
    assert torch.allclose(out[0, 0], torch.full((2, 2), (1 - 0.4914) / 0.2470))


# ------------------------------------------------------------------ faults
def test_a_cut_decoded_cache_is_rebuilt_with_one_line(image_folder, capsys):
    from hintlearn_mini.data import cache_dir
    first = load_cifar("cifar10", "train", root=image_folder)
    (cached,) = cache_dir().glob("cifar10-train-*.pt")
    cached.write_bytes(cached.read_bytes()[:100])  # a killed run, a full disk
    again = load_cifar("cifar10", "train", root=image_folder)
    assert torch.equal(again.images, first.images) and torch.equal(again.labels, first.labels)
    out = capsys.readouterr().out
    assert f"the decoded-data cache {cached} is unusable" in out and "decoding the data again" in out
    assert load_cifar("cifar10", "train", root=image_folder).fingerprint() == first.fingerprint()


def test_hidden_and_non_image_files_are_skipped_as_imagefolder_does(image_folder):
    before = load_cifar("cifar10", "train", root=image_folder)
    (image_folder / "train" / "cat" / ".DS_Store").write_bytes(b"\0\1mac")
    (image_folder / "train" / "cat" / "notes.txt").write_text("taken on a sunny day")
    (image_folder / "train" / ".hidden_class").mkdir()
    after = load_cifar("cifar10", "train", root=image_folder)
    assert torch.equal(after.images, before.images) and after.classes == before.classes


def test_a_corrupt_image_names_the_file(image_folder):
    from hintlearn_mini.data import DataFolderError
    bad = image_folder / "train" / "dog" / "0001.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(DataFolderError, match=r"0001\.jpg is not a readable image .*Replace it"):
        load_cifar("cifar10", "train", root=image_folder)


def test_an_image_of_another_size_is_a_clear_error(image_folder):
    from PIL import Image
    from hintlearn_mini.data import DataFolderError
    Image.new("RGB", (64, 48)).save(image_folder / "test" / "frog" / "0000.jpg")
    with pytest.raises(DataFolderError, match=r"0000\.jpg is 64×48 pixels.*take 32×32"):
        load_cifar("cifar10", "test", root=image_folder)


def test_train_and_test_must_have_the_same_classes(image_folder):
    import shutil
    from hintlearn_mini.data import DataFolderError
    shutil.rmtree(image_folder / "test" / "dog")
    with pytest.raises(DataFolderError, match=r"Missing in test/: \['dog'\]"):
        load_cifar("cifar10", "test", root=image_folder)
    with pytest.raises(DataFolderError, match="same class folders"):
        load_cifar("cifar10", "train", root=image_folder)  # the train labels would not match either


WRITER = """
import sys, torch
sys.path.insert(0, {root!r})
from pathlib import Path
from hintlearn_mini.data import atomic_save
for i in range(40):
    atomic_save({{"who": {who}, "i": i, "payload": torch.full((20_000,), float(i))}}, Path({path!r}))
"""


def test_two_processes_sharing_a_cache_file_never_leave_it_broken(tmp_path):
    """Two notebooks writing the same cache entry at once: every read sees a whole file."""
    import subprocess
    import sys
    from pathlib import Path
    path = tmp_path / "shared.pt"
    root = str(Path(__file__).resolve().parents[1])
    writers = [subprocess.Popen([sys.executable, "-c", WRITER.format(root=root, who=w, path=str(path))])
               for w in (1, 2)]
    reads = 0
    while any(w.poll() is None for w in writers):
        if path.exists():
            stored = torch.load(path, weights_only=True)  # never a half-written file
            assert torch.equal(stored["payload"], torch.full((20_000,), float(stored["i"])))
            reads += 1
    assert all(w.returncode == 0 for w in writers) and reads > 0
    assert not list(tmp_path.glob(".*.tmp")), "temporary files left behind"


def test_relabelled_class_folders_decode_again(image_folder):
    before = load_cifar("cifar10", "train", root=image_folder)
    for split in ("train", "test"):  # the same files, the same sizes; other class names
        (image_folder / split / "cat").rename(image_folder / split / "zebra")
    after = load_cifar("cifar10", "train", root=image_folder)
    assert before.classes == ["cat", "dog", "frog"] and after.classes == ["dog", "frog", "zebra"]
    # the cats of before are the zebras of after: the last class, no longer the first
    assert torch.equal(after.images[after.labels == 2], before.images[before.labels == 0])
    assert after.fingerprint() != before.fingerprint()
    for split in ("train", "test"):  # renamed in place: the same files in the same order
        (image_folder / split / "frog").rename(image_folder / split / "toad")
    assert load_cifar("cifar10", "train", root=image_folder).classes == ["dog", "toad", "zebra"]


def test_each_data_set_is_normalised_with_its_own_channel_statistics():
    from hintlearn_mini.views import CIFAR_MEAN, CIFAR_STD

    assert set(CIFAR_MEAN) == set(CIFAR_STD) == {"cifar10", "cifar100"}
    assert CIFAR_MEAN["cifar10"] != CIFAR_MEAN["cifar100"] and CIFAR_STD["cifar10"] != CIFAR_STD["cifar100"]
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    for name in CIFAR_MEAN:
        data = ImageSet(images, torch.arange(4), ["a", "b", "c", "d"], name)
        mean = torch.tensor(CIFAR_MEAN[name]).view(1, 3, 1, 1)
        std = torch.tensor(CIFAR_STD[name]).view(1, 3, 1, 1)
        x, _, _ = next(batches(data, 4))
        torch.testing.assert_close(x * std + mean, images.float() / 255)  # undone with its own statistics
        torch.testing.assert_close(normalize(images, name), x)


def test_the_validation_split_is_fixed_class_balanced_and_disjoint_from_the_rest():
    from hintlearn_mini.data import VALIDATION_IMAGES, split_validation

    assert VALIDATION_IMAGES == 5_000
    data = random_images(600)  # 60 a class
    rest, validation = split_validation(data, images=200)
    assert torch.bincount(validation.labels).tolist() == [20] * 10
    assert len(rest) + len(validation) == len(data)
    rows = lambda subset: {bytes(image.numpy()) for image in subset.images}  # noqa: E731
    assert not rows(rest) & rows(validation) and rows(rest) | rows(validation) == rows(data)
    again_rest, again = split_validation(data, images=200)
    assert torch.equal(again.images, validation.images) and torch.equal(again_rest.images, rest.images)
    assert validation.name == rest.name == data.name
    # the split does not move with a run's seed: training subsets are drawn from the rest
    assert not rows(balanced_subset(rest, 40, seed=3)) & rows(validation)
    with pytest.raises(ValueError, match="multiple of the 10 classes"):
        split_validation(data, images=205)


def test_a_profiles_training_images_come_from_outside_the_validation_split(monkeypatch):
    from hintlearn_mini import data as data_module
    from hintlearn_mini.profiles import PROFILES, load_experiment_splits

    full, test = random_images(6000), random_images(200, seed=1)  # 600 and 20 a class
    monkeypatch.setattr(data_module, "load_cifar", lambda name, split, root=None: full if split == "train" else test)
    splits = load_experiment_splits(PROFILES["quick"])  # 40 a class for training, 20 a class of test
    rows = lambda subset: {bytes(image.numpy()) for image in subset.images}  # noqa: E731
    assert len(splits.validation) == 5000 and len(splits.train) == 400 and len(splits.test) == 200
    assert not rows(splits.train) & rows(splits.validation)
    assert torch.equal(splits.validation.images, data_module.split_validation(full)[1].images)
