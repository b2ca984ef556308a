"""The shipped, pretrained CIFAR-10 teacher, and the recipe that retrains it.

The book never trains a teacher in its quick or laptop profiles: it loads the
checkpoint in ``hintlearn_mini/weights/`` after checking its sha256 against the
manifest beside it, which also records the architecture, data, recipe, training time,
device and test accuracy. ``python -m hintlearn_mini.zoo`` retrains it with the same
recipe and writes a new checkpoint and manifest (``--out``, default: the cache folder).

Chapter: ``book/01_teacher_and_student.ipynb``.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from .checkpoints import load_checkpoint, save_checkpoint
from .data import cache_dir, load_cifar
from .models import build_model
from .train import evaluate, fit, seed_everything

__all__ = ["TEACHER_RECIPE", "load_teacher", "teacher_manifest", "train_teacher", "WEIGHTS"]

WEIGHTS = Path(__file__).parent / "weights"

# The recipe of the shipped teacher: He et al.'s CIFAR augmentation, SGD with Nesterov
# momentum, weight decay 5e-4 and a one-cycle schedule, on all 50,000 training images.
TEACHER_RECIPE = {
    "arch": "resnet32", "dataset": "cifar10", "train_images": 50_000, "epochs": 40,
    "batch_size": 128, "lr": 0.1, "schedule": "onecycle", "weight_decay": 5e-4,
    "optimizer": "SGD momentum 0.9 nesterov", "augmentation": "random crop (pad 4) + horizontal flip",
    "seed": 0,
}


def teacher_manifest(name: str = "resnet32_cifar10", folder: Path = WEIGHTS) -> dict:
    """The manifest of a stored teacher (architecture, recipe, accuracy, sha256, ...)."""
    path = Path(folder) / f"{name}.json"
    if not path.is_file():
        available = sorted(p.stem for p in Path(folder).glob("*.json"))
        raise FileNotFoundError(f"no teacher manifest {path}; available teachers: {available}. "
                                f"Retrain with `python -m hintlearn_mini.zoo`.")
    return json.loads(path.read_text())


def load_teacher(name: str = "resnet32_cifar10", folder: Path = WEIGHTS) -> torch.nn.Module:
    """Build the stored teacher, load its hash-checked weights, return it in eval mode."""
    manifest = teacher_manifest(name, folder)
    model = build_model(manifest["recipe"]["arch"], manifest["num_classes"])
    load_checkpoint(model, Path(folder) / manifest["file"], sha256=manifest["sha256"])
    return model.eval()


def train_teacher(recipe: dict = TEACHER_RECIPE, out: Path | None = None, device: str = "cpu",
                  data_root: str | None = None, name: str = "resnet32_cifar10") -> dict:
    """Train a teacher with ``recipe``, save checkpoint + manifest in ``out``; return the manifest."""
    out = Path(out) if out is not None else cache_dir() / "zoo"
    train_set = load_cifar(recipe["dataset"], "train", root=data_root)
    test_set = load_cifar(recipe["dataset"], "test", root=data_root)
    seed_everything(recipe["seed"])
    model = build_model(recipe["arch"], len(train_set.classes))
    start = time.perf_counter()
    history = fit(model, train_set, test_set, epochs=recipe["epochs"], batch_size=recipe["batch_size"],
                  lr=recipe["lr"], weight_decay=recipe["weight_decay"], schedule=recipe["schedule"],
                  seed=recipe["seed"], device=device, desc=f"teacher {recipe['arch']}")
    seconds = time.perf_counter() - start
    model.cpu()
    accuracy = evaluate(model, test_set)
    sha = save_checkpoint(model, out / f"{name}.pt", recipe["arch"], {"test_accuracy": accuracy})
    manifest = {
        "name": name, "file": f"{name}.pt", "sha256": sha, "num_classes": len(train_set.classes),
        "recipe": recipe, "test_accuracy": round(accuracy, 2), "test_images": len(test_set),
        "train_seconds": round(seconds, 1),
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "test_accuracy_per_epoch": [round(a, 2) for a in history.column("test_acc")],
    }
    (out / f"{name}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Retrain the book's CIFAR-10 teacher.")
    parser.add_argument("--out", type=Path, default=None, help="folder for the checkpoint and manifest "
                        "(default: the cache folder; pass hintlearn_mini/weights to replace the shipped one)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--epochs", type=int, default=TEACHER_RECIPE["epochs"])
    parser.add_argument("--data", default=None, help="data folder (default: $HINTLEARN_DATA)")
    args = parser.parse_args(argv)
    recipe = dict(TEACHER_RECIPE, epochs=args.epochs)
    manifest = train_teacher(recipe, args.out, args.device, args.data)
    print(json.dumps({k: manifest[k] for k in ("file", "sha256", "test_accuracy", "train_seconds", "device")}, indent=2))


if __name__ == "__main__":
    main()
