"""CIFAR-10 / CIFAR-100 as uint8 tensors and class-balanced subsets.

The book trains on a CPU, so images are decoded once into a ``(N, 3, 32, 32)`` uint8
tensor (cached in a file); augmentation and batching (``hintlearn_mini.views``) run on
whole batches of tensors instead of one PIL image at a time.

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
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

__all__ = [
    "ImageSet", "load_cifar", "balanced_subset", "split_validation", "VALIDATION_IMAGES", "cache_dir",
    "DataNotFoundError", "DataFolderError", "IMAGE_EXTENSIONS", "atomic_save",
]

_TORCHVISION_FOLDER = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
_IMAGEFOLDER_NAMES = {"cifar10": ("cifar10-jpeg", "cifar10"), "cifar100": ("cifar100-jpeg", "cifar100")}


class DataNotFoundError(FileNotFoundError):
    """Raised when no copy of the data set is found and it may not be downloaded."""


class DataFolderError(ValueError):
    """Raised for an ImageFolder the book cannot train on: a file that is not a readable
    image, an image of another size than 32 × 32, or train/ and test/ with other classes."""


# What counts as an image in an ImageFolder: torchvision's list (``ImageFolder`` skips the
# rest, and so does the book: ``.DS_Store``, ``Thumbs.db``, notes). Hidden files are skipped.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
IMAGE_SIZE = (32, 32)  # (H, W) every model of the book expects


def atomic_save(obj, path: Path) -> None:
    """``torch.save`` to a temporary file of this process, then rename it into place: a
    killed run never leaves half a file, and two processes sharing a cache folder never
    write into the same temporary file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        torch.save(obj, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


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

    if kind == "imagefolder":
        _check_same_classes(source)
    key = hashlib.sha256((str(source.resolve()) + _listing(source, kind, split)).encode()).hexdigest()[:12]
    cache_file = cache_dir() / f"{name}-{split}-{key}.pt"
    if cache_file.exists():
        cached = _read_cache(cache_file)
        if cached is not None:
            return ImageSet(cached["images"], cached["labels"], cached["classes"], name)
    if kind == "imagefolder":
        images, labels, classes = _decode_imagefolder(source / split)
    else:
        images, labels, classes = _read_torchvision(name, source.parent, split)
    atomic_save({"images": images, "labels": labels, "classes": classes}, cache_file)
    return ImageSet(images, labels, classes, name)


def _listing(source: Path, kind: str, split: str) -> str:
    """What the decoded copy depends on besides the folder's path: an ImageFolder's
    class folders and its image files with their sizes (a file added, removed or
    replaced decodes again)."""
    if kind != "imagefolder":
        return ""
    entries = [f"{cls.name}/{f.name}:{f.stat().st_size}" for cls in _class_folders(source / split)
               for f in _image_files(cls)]
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


def _read_cache(path: Path) -> dict | None:
    """The decoded tensors of a cache file, or None (and the file removed, with one line
    saying so) when it is cut short, corrupt or not what the book writes."""
    try:
        cached = torch.load(path, weights_only=True)
        images, labels = cached["images"], cached["labels"]
        if images.dtype != torch.uint8 or images.dim() != 4 or len(images) != len(labels):
            raise ValueError(f"images {tuple(images.shape)} {images.dtype}, {len(labels)} labels")
        return cached
    except Exception as error:  # a killed run, a full disk, another program's file
        print(f"the decoded-data cache {path} is unusable ({type(error).__name__}: "
              f"{str(error).splitlines()[0][:100] if str(error) else 'no detail'}); "
              "deleting it and decoding the data again")
        path.unlink(missing_ok=True)
        return None


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


def _class_folders(folder: Path) -> list[Path]:
    """The class folders of an ImageFolder split, sorted (hidden folders skipped)."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(folder: Path) -> list[Path]:
    """The images of a class folder, sorted: files with an image extension, not hidden."""
    return sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith(".")
                  and f.suffix.lower() in IMAGE_EXTENSIONS)


def _check_same_classes(source: Path) -> None:
    train, test = ({p.name for p in _class_folders(source / split)} for split in ("train", "test"))
    if train != test:
        raise DataFolderError(
            f"{source}: train/ and test/ must hold the same class folders, or every label after "
            f"a missing class is shifted. Missing in test/: {sorted(train - test) or 'none'}; "
            f"missing in train/: {sorted(test - train) or 'none'}. Add the missing folders "
            "(or remove the extra ones) and load again.")


def _decode_imagefolder(folder: Path) -> tuple[Tensor, Tensor, list[str]]:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    classes = [p.name for p in _class_folders(folder)]
    images, labels = [], []
    for label, cls in enumerate(classes):
        for file in _image_files(folder / cls):
            try:
                with Image.open(file) as image:
                    pixels = np.asarray(image.convert("RGB"))  # (H, W, 3) uint8
            except (UnidentifiedImageError, OSError) as error:
                raise DataFolderError(f"{file} is not a readable image ({type(error).__name__}: {error}). "
                                      "Replace it with a good copy or delete it, then load again.") from error
            if pixels.shape[:2] != IMAGE_SIZE:
                raise DataFolderError(
                    f"{file} is {pixels.shape[1]}×{pixels.shape[0]} pixels; the book's models take "
                    f"{IMAGE_SIZE[1]}×{IMAGE_SIZE[0]} CIFAR images. Resize the folder's images to "
                    f"{IMAGE_SIZE[1]}×{IMAGE_SIZE[0]} (e.g. PIL's Image.resize) before loading it.")
            images.append(pixels)
            labels.append(label)
    if not images:
        raise DataFolderError(f"{folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}) in its class folders.")
    images = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()  # (N, 3, H, W)
    return images, torch.tensor(labels, dtype=torch.long), classes


# ------------------------------------------------------------------ subsets
def balanced_subset(data: ImageSet, per_class: int, seed: int = 0) -> ImageSet:
    """``per_class`` images of every class, chosen at random but reproducibly by ``seed``.

    The result keeps the original order of the chosen rows.
    """
    return data.subset(_balanced_rows(data, per_class, seed))


def _balanced_rows(data: ImageSet, per_class: int, seed: int) -> Tensor:
    """The sorted rows :func:`balanced_subset` chooses."""
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label in range(len(data.classes)):
        rows = torch.nonzero(data.labels == label).flatten()
        if per_class > len(rows):
            raise ValueError(
                f"asked for {per_class} images per class but class {label} "
                f"({data.classes[label]!r}) has only {len(rows)}")
        chosen.append(rows[torch.randperm(len(rows), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values


# ------------------------------------------------------------------ the validation split
# Carved out of the training images before anything else is drawn: 5,000 images, class-
# balanced (CIFAR-10: 500 a class, the 45k/5k split of torchdistill; CIFAR-100: 50), by a
# seed of its own that no run uses. The teachers and every training subset come from the
# other images, so a setting chosen on validation accuracy was chosen on images that no
# network, the teacher included, trained on.
VALIDATION_IMAGES = 5_000
VALIDATION_SEED = 20_150_101  # not a run seed: the split never moves with the seeds of runs


def split_validation(train_set: ImageSet, images: int = VALIDATION_IMAGES,
                     seed: int = VALIDATION_SEED) -> tuple[ImageSet, ImageSet]:
    """``(rest, validation)``: ``images`` training images held out, the same number of
    every class (:func:`balanced_subset` by ``seed``), and every other image.

    Draw training subsets from ``rest`` only: the two never share an image. Both keep the
    original order of their rows.
    """
    per_class, left = divmod(images, len(train_set.classes))
    if left or not per_class:
        raise ValueError(f"a class-balanced validation split of {images} images needs a multiple of "
                         f"the {len(train_set.classes)} classes")
    rows = _balanced_rows(train_set, per_class, seed)
    held_out = torch.zeros(len(train_set), dtype=torch.bool)
    held_out[rows] = True
    return train_set.subset(torch.nonzero(~held_out).flatten()), train_set.subset(rows)
