"""CIFAR-10 / CIFAR-100 as uint8 tensors, class-balanced subsets and fast batches.

The book trains on a CPU, so images are decoded once into a ``(N, 3, 32, 32)`` uint8
tensor (cached in a file), and augmentation (random crop with 4 pixels of zero padding,
horizontal flip; He et al. 2016) runs on whole batches of tensors instead of one PIL
image at a time.

Where the data comes from, in this order:

1. ``root=`` passed to :func:`load_cifar`, else the ``HINTLEARN_DATA`` environment
   variable, else ``~/.cache/hintlearn/data``;
2. in that folder, either torchvision's layout (``cifar-10-batches-py/``,
   ``cifar-100-python/``) or an ImageFolder layout (``train/<class>/*.jpg`` and
   ``test/<class>/*.jpg``, also under ``cifar10-jpeg/``);
3. if neither is there and downloading is allowed (``download=True``, or
   ``HINTLEARN_DOWNLOAD`` not set to ``0``), torchvision downloads the original.

Decoded tensors are cached under ``HINTLEARN_CACHE`` (default ``~/.cache/hintlearn``),
never beside the data (which may be read-only).

Chapter: ``book/01_teacher_and_student.ipynb``.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor

__all__ = [
    "ImageSet", "load_cifar", "balanced_subset", "batches", "augment", "normalize",
    "cache_dir", "DataNotFoundError", "CIFAR_MEAN", "CIFAR_STD", "contrast_indices",
    "Views", "random_views", "epoch_views", "apply_views",
]

# Channel statistics of the CIFAR training sets, used to normalise inputs.
CIFAR_MEAN = {"cifar10": (0.4914, 0.4822, 0.4465), "cifar100": (0.5071, 0.4867, 0.4408)}
CIFAR_STD = {"cifar10": (0.2470, 0.2435, 0.2616), "cifar100": (0.2675, 0.2565, 0.2761)}
_TORCHVISION_FOLDER = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
_IMAGEFOLDER_NAMES = {"cifar10": ("cifar10-jpeg", "cifar10"), "cifar100": ("cifar100-jpeg", "cifar100")}


class DataNotFoundError(FileNotFoundError):
    """Raised when no copy of the data set is found and it may not be downloaded."""


@dataclass
class ImageSet:
    """Images as a uint8 tensor ``(N, 3, 32, 32)``, labels ``(N,)`` and class names."""

    images: Tensor
    labels: Tensor
    classes: list[str]
    name: str = "cifar10"
    _fingerprint: str | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: Tensor) -> "ImageSet":
        """A new ImageSet of these rows; its sample ``i`` is the ``indices[i]``-th here."""
        return ImageSet(self.images[indices], self.labels[indices], self.classes, self.name)

    def fingerprint(self) -> str:
        """sha256 of the images, labels, class names and name, computed once per set.

        Two sets of the same size but other images get other fingerprints; the run
        cache and the teacher-output store key on it. (Do not change ``images`` in
        place after asking: the value is remembered.)
        """
        if self._fingerprint is None:
            digest = hashlib.sha256()
            digest.update(repr((self.name, self.classes, tuple(self.images.shape))).encode())
            digest.update(self.images.contiguous().numpy().tobytes())
            digest.update(self.labels.contiguous().numpy().tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint


def cache_dir() -> Path:
    """Writable folder for decoded tensors and checkpoints (``HINTLEARN_CACHE``)."""
    path = Path(os.environ.get("HINTLEARN_CACHE", Path.home() / ".cache" / "hintlearn"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _default_root() -> Path:
    return Path(os.environ.get("HINTLEARN_DATA", Path.home() / ".cache" / "hintlearn" / "data"))


def _download_allowed(download: bool | None) -> bool:
    if download is not None:
        return download
    return os.environ.get("HINTLEARN_DOWNLOAD", "1") != "0"


def load_cifar(name: str = "cifar10", split: str = "train", root: str | Path | None = None,
               download: bool | None = None) -> ImageSet:
    """Load a CIFAR split as uint8 tensors, decoding it once and caching the result.

    Args:
        name: ``"cifar10"`` or ``"cifar100"``.
        split: ``"train"`` (50,000 images) or ``"test"`` (10,000 images).
        root: folder to look in; default ``$HINTLEARN_DATA`` or ``~/.cache/hintlearn/data``.
        download: let torchvision download the data set when no copy is found;
            default: allowed unless ``HINTLEARN_DOWNLOAD=0``.
    """
    if name not in _TORCHVISION_FOLDER:
        raise ValueError(f"unknown data set {name!r}; valid names: {', '.join(_TORCHVISION_FOLDER)}")
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; valid splits: 'train', 'test'")
    root = Path(root) if root is not None else _default_root()
    source, kind = _find_source(name, root)
    if source is None:
        if not _download_allowed(download):
            raise _not_found_error(name, root)
        source, kind = _download(name, root), "torchvision"

    key = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:12]
    cache_file = cache_dir() / f"{name}-{split}-{key}.pt"
    if cache_file.exists():
        cached = torch.load(cache_file, weights_only=True)
        return ImageSet(cached["images"], cached["labels"], cached["classes"], name)
    if kind == "imagefolder":
        images, labels, classes = _decode_imagefolder(source / split)
    else:
        images, labels, classes = _read_torchvision(name, source.parent, split)
    tmp = cache_file.with_suffix(".tmp")
    torch.save({"images": images, "labels": labels, "classes": classes}, tmp)
    tmp.replace(cache_file)  # atomic: an interrupted run never leaves a half-written cache
    return ImageSet(images, labels, classes, name)


def _candidates(name: str, root: Path) -> list[tuple[Path, str]]:
    """Every place a copy of ``name`` may be, with its layout."""
    places = [(root / _TORCHVISION_FOLDER[name], "torchvision"), (root, "imagefolder")]
    places += [(root / sub, "imagefolder") for sub in _IMAGEFOLDER_NAMES[name]]
    return places


def _find_source(name: str, root: Path) -> tuple[Path | None, str]:
    for path, kind in _candidates(name, root):
        if kind == "torchvision" and path.is_dir():
            return path, kind
        if kind == "imagefolder" and (path / "train").is_dir() and (path / "test").is_dir():
            if name == "cifar10" and path.name in _IMAGEFOLDER_NAMES["cifar100"]:
                continue
            return path, kind
    return None, ""


def _not_found_error(name: str, root: Path) -> DataNotFoundError:
    searched = "\n".join(f"  {p}  ({kind} layout)" for p, kind in _candidates(name, root))
    return DataNotFoundError(
        f"No copy of {name} was found. Looked in:\n{searched}\n"
        f"Fix it in one of two ways:\n"
        f"  1. point to a copy: load_cifar(..., root='/path/to/data') or "
        f"export HINTLEARN_DATA=/path/to/data (torchvision's '{_TORCHVISION_FOLDER[name]}/' "
        f"or an ImageFolder 'train/<class>/*.jpg' + 'test/<class>/*.jpg');\n"
        f"  2. let torchvision download it into {root}: load_cifar(..., download=True) "
        f"or unset HINTLEARN_DOWNLOAD=0."
    )


def _download(name: str, root: Path) -> Path:
    from torchvision import datasets

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    root.mkdir(parents=True, exist_ok=True)
    cls(str(root), train=True, download=True)
    cls(str(root), train=False, download=True)
    return root / _TORCHVISION_FOLDER[name]


def _read_torchvision(name: str, root: Path, split: str) -> tuple[Tensor, Tensor, list[str]]:
    from torchvision import datasets

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    ds = cls(str(root), train=(split == "train"), download=False)
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N, 3, 32, 32)
    return images, torch.tensor(ds.targets, dtype=torch.long), list(ds.classes)


def _decode_imagefolder(folder: Path) -> tuple[Tensor, Tensor, list[str]]:
    import numpy as np
    from PIL import Image

    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    images, labels = [], []
    for label, cls in enumerate(classes):
        for file in sorted((folder / cls).iterdir()):
            with Image.open(file) as image:
                images.append(np.asarray(image.convert("RGB")))  # (H, W, 3) uint8
            labels.append(label)
    images = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()  # (N, 3, H, W)
    return images, torch.tensor(labels, dtype=torch.long), classes


# ------------------------------------------------------------------ subsets
def balanced_subset(data: ImageSet, per_class: int, seed: int = 0) -> ImageSet:
    """``per_class`` images of every class, chosen at random but reproducibly by ``seed``.

    The result keeps the original order of the chosen rows.
    """
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label in range(len(data.classes)):
        rows = torch.nonzero(data.labels == label).flatten()
        if per_class > len(rows):
            raise ValueError(
                f"asked for {per_class} images per class but class {label} "
                f"({data.classes[label]!r}) has only {len(rows)}")
        chosen.append(rows[torch.randperm(len(rows), generator=generator)[:per_class]])
    return data.subset(torch.cat(chosen).sort().values)


# ------------------------------------------------------------- augmentation
@dataclass(frozen=True)
class Views:
    """One augmented view per image: crop offsets ``dy``, ``dx`` in [0, 2·padding] and
    a horizontal ``flip``, each of shape (N,)."""

    dy: Tensor
    dx: Tensor
    flip: Tensor

    def __getitem__(self, rows: Tensor) -> "Views":
        return Views(self.dy[rows], self.dx[rows], self.flip[rows])


def random_views(n: int, generator: torch.Generator, padding: int = 4) -> Views:
    """Draw a crop offset and a flip for each of ``n`` images (He et al. 2016)."""
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    return Views(dy, dx, torch.rand(n, generator=generator) < 0.5)


def epoch_views(n: int, seed: int, epoch: int, padding: int = 4) -> Views:
    """The views of all ``n`` images of a data set in one epoch of a run.

    They depend on the run's ``seed``, the ``epoch`` and the image's row only, not on
    the batch order or on the method trained: every method trained with the same seed
    sees image ``i`` in epoch ``e`` under the same crop and flip. That is what lets a
    frozen teacher's outputs be computed once per view (:mod:`hintlearn_mini.teacher_outputs`).
    """
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch + 7_919)
    return random_views(n, generator, padding)


def apply_views(images: Tensor, views: Views, padding: int = 4) -> Tensor:
    """Crop each zero-padded image at its offset and flip it if asked.

    images: (B, 3, H, W) uint8, views of length B -> (B, 3, H, W).
    """
    b, _, h, w = images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4)  # (B, 3, H+2p, W+2p)
    rows = (views.dy[:, None] + torch.arange(h))[:, None, :, None]  # (B, 1, H, 1)
    cols = (views.dx[:, None] + torch.arange(w))[:, None, None, :]  # (B, 1, 1, W)
    batch = torch.arange(b)[:, None, None, None]
    channel = torch.arange(3)[None, :, None, None]
    out = padded[batch, channel, rows, cols]  # (B, 3, H, W)
    return torch.where(views.flip[:, None, None, None], out.flip(3), out)


def augment(images: Tensor, generator: torch.Generator, padding: int = 4) -> Tensor:
    """Random crop with zero padding and random horizontal flip, on a uint8 batch.

    images: (B, 3, H, W) -> (B, 3, H, W), one random crop offset and flip per image.
    """
    return apply_views(images, random_views(len(images), generator, padding), padding)


def normalize(images: Tensor, name: str = "cifar10") -> Tensor:
    """uint8 (B, 3, H, W) -> float32, scaled to [0, 1] and standardised per channel."""
    mean = torch.tensor(CIFAR_MEAN[name]).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD[name]).view(1, 3, 1, 1)
    return (images.float() / 255 - mean) / std


def batches(data: ImageSet, batch_size: int, train: bool = False, seed: int = 0,
            epoch: int = 0) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """Yield ``(x, y, index)`` batches: normalised float images, labels, dataset rows.

    With ``train=True`` the order is shuffled by a generator seeded by ``(seed, epoch)``
    and every image is shown under its view of :func:`epoch_views` ``(seed, epoch)``,
    so a run is reproducible. ``index`` is each sample's row in ``data`` (CRD uses it
    to address its memory bank, the teacher-output store to find the view's logits).
    """
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    n = len(data)
    order = torch.randperm(n, generator=generator) if train else torch.arange(n)
    views = epoch_views(n, seed, epoch) if train else None
    for start in range(0, n, batch_size):
        index = order[start:start + batch_size]
        images = data.images[index]
        if train:
            images = apply_views(images, views[index])
        yield normalize(images, data.name), data.labels[index], index


def contrast_indices(labels: Tensor, index: Tensor, k: int, generator: torch.Generator | None = None) -> Tensor:
    """For CRD: each sample's dataset index followed by K negatives, shape (B, K+1).

    Column 0 is the sample's own row in the training set (the positive); the K others
    are drawn uniformly, without replacement, from the rows of the *other* classes (the
    official ``exact`` mode). ``labels`` are those of the whole training set.
    """
    labels, index = labels.cpu(), index.cpu()
    out = torch.empty(len(index), k + 1, dtype=torch.long)
    out[:, 0] = index
    for row, label in enumerate(labels[index].tolist()):
        pool = torch.nonzero(labels != label).flatten()
        if k > len(pool):
            raise ValueError(f"K={k} negatives asked for, but only {len(pool)} samples lie outside "
                             f"class {label}: lower K")
        out[row, 1:] = pool[torch.randperm(len(pool), generator=generator)[:k]]
    return out
