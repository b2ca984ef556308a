"""Shared fixtures: tests never touch the network or the user's cache."""
import pytest
import torch
from PIL import Image

from hintlearn_mini.data import ImageSet


@pytest.fixture(autouse=True)
def offline_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HINTLEARN_DOWNLOAD", "0")
    monkeypatch.setenv("HINTLEARN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HINTLEARN_DATA", raising=False)
    monkeypatch.delenv("HINTLEARN_PROFILE", raising=False)
    monkeypatch.delenv("HINTLEARN_PRECISION", raising=False)
    monkeypatch.delenv("HINTLEARN_DEVICE", raising=False)


@pytest.fixture
def image_folder(tmp_path):
    """A tiny CIFAR-like ImageFolder: 3 classes, 4 train and 2 test JPEGs each."""
    root = tmp_path / "tiny"
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 4), ("test", 2)):
        for cls in ("cat", "dog", "frog"):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=g)
                Image.fromarray(image.permute(1, 2, 0).numpy()).save(root / split / cls / f"{i:04d}.jpg", quality=95)
    return root


def random_images(n: int = 64, classes: int = 10, seed: int = 0) -> ImageSet:
    """A learnable synthetic set: each class has its own mean colour."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    base = (labels[:, None] * 23 % 256).float().view(n, 1, 1, 1).expand(n, 3, 32, 32)
    noise = torch.randint(-30, 30, (n, 3, 32, 32), generator=g).float()
    images = (base + noise).clamp(0, 255).to(torch.uint8)
    return ImageSet(images, labels, [f"c{i}" for i in range(classes)])


@pytest.fixture
def tiny_set():
    return random_images()


def another_value(value):
    """A different valid value of a method's keyword, by the type of its default."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1  # a stage 2 -> 3, p 2 -> 3, K, a dimension
    if isinstance(value, float):
        return 2 * value if value else 0.5
    if isinstance(value, tuple):
        return value[:-1]  # stages (1, 2, 3) -> (1, 2)
    if isinstance(value, torch.Tensor):
        return value.roll(1)
    if value is None:
        return 1
    raise AssertionError(f"no other value known for {value!r}: extend another_value")


def every_method():
    """Every distillation method ``hintlearn_mini.methods`` exports (a new one joins
    the tests that run over all of them by being exported)."""
    from hintlearn_mini import methods

    return [c for c in vars(methods).values()
            if isinstance(c, type) and issubclass(c, methods.Distiller) and c is not methods.Distiller]
