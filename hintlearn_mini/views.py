"""What a run sees of its data: augmented views, normalised batches, CRD's negatives.

Augmentation (random crop with 4 pixels of zero padding, horizontal flip; He et al.
2016) runs on whole uint8 batches. A view depends on the run's seed, the epoch and the
image's row only (:func:`epoch_views`), so every method trained with a seed sees the
same images under the same crops and flips. ``hintlearn_mini.data`` loads the images
and re-exports these functions.

Chapter: ``book/01_teacher_and_student.ipynb``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import torch
from torch import Tensor

if TYPE_CHECKING:
    from .data import ImageSet

__all__ = ["CIFAR_MEAN", "CIFAR_STD", "Views", "random_views", "epoch_views", "apply_views",
           "augment", "normalize", "batches", "contrast_indices"]

# Channel statistics of the CIFAR training sets, used to normalise inputs.
CIFAR_MEAN = {"cifar10": (0.4914, 0.4822, 0.4465), "cifar100": (0.5071, 0.4867, 0.4408)}
CIFAR_STD = {"cifar10": (0.2470, 0.2435, 0.2616), "cifar100": (0.2675, 0.2565, 0.2761)}


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
