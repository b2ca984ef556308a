"""The shipped, pretrained CIFAR-10 teachers, and the recipes that retrain them.

The book never trains a teacher in its quick or laptop profiles: it loads a
checkpoint in ``hintlearn_mini/weights/`` after checking its sha256 against the
manifest beside it, which also records the architecture, data, recipe, training time,
device and test accuracy. Two ship: ``resnet32_cifar10`` (chapters 1-8) and
``resnet18_cifar10``, a torchvision ResNet-18 (chapter 9).
``python -m hintlearn_mini.zoo [--teacher NAME]`` retrains one with its recipe and writes
a new checkpoint and manifest (``--out``, default: the cache folder). The paper profile's
CIFAR-100 teachers are trained on first use by :func:`profile_teacher`.

Chapter: ``book/01_teacher_and_student.ipynb``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
from pathlib import Path

import torch

from .checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from .data import VALIDATION_IMAGES, cache_dir, load_cifar, split_validation
from .models import build_model
from .train import evaluate, fit, seed_everything

__all__ = ["TEACHER_RECIPE", "STANDARD_TEACHER_RECIPE", "TORCHVISION_TEACHER_RECIPE", "SHIPPED_TEACHERS", "load_teacher", "teacher_manifest", "train_teacher", "WEIGHTS",
           "profile_teacher_recipe", "profile_teacher"]

WEIGHTS = Path(__file__).parent / "weights"

# The recipe of the shipped teacher: He et al.'s CIFAR augmentation, SGD with Nesterov
# momentum, weight decay 5e-4 and a one-cycle schedule, on all 50,000 training images.
TEACHER_RECIPE = {
    "arch": "resnet32", "dataset": "cifar10", "train_images": 50_000, "epochs": 40,
    "batch_size": 128, "lr": 0.1, "schedule": "onecycle", "weight_decay": 5e-4,
    "optimizer": "SGD momentum 0.9 nesterov", "augmentation": "random crop (pad 4) + horizontal flip",
    "seed": 0,
}

# The teacher of the fair comparison (issue 27), in training: resnet32 at the standard
# CIFAR-10 accuracy (He et al. 2016 report 92.49 % for resnet32), trained on the 45,000
# training images outside the validation split (data.split_validation), which it must
# not see: a teacher that learnt the validation images would favour, on validation, the
# students that copy it best. 200 epochs of the same one-cycle recipe; it resumes from
# its checkpoint when the run is stopped (a CPU takes hours). It replaces the shipped
# resnet32 once trained.
STANDARD_TEACHER_RECIPE = dict(TEACHER_RECIPE, train_images=50_000 - VALIDATION_IMAGES, epochs=200, eval_every=10,
                               held_out=f"the validation split ({VALIDATION_IMAGES} images, data.split_validation)")

# Chapter 9's teacher: torchvision's ResNet-18 exactly as torchvision builds it (ImageNet
# stem: the 32×32 images are 8×8 after the stem), trained on CIFAR-10 with the same
# recipe but for 6 epochs (it was trained on a 2-core CPU; the manifest gives the time), and
# stored in float16 to halve the file (its accuracy is measured after loading).
TORCHVISION_TEACHER_RECIPE = dict(TEACHER_RECIPE, arch="torchvision.resnet18", epochs=6, stored_as="float16")

# Every teacher that ships, by name: the recipe that made it.
SHIPPED_TEACHERS = {"resnet32_cifar10": TEACHER_RECIPE, "resnet18_cifar10": TORCHVISION_TEACHER_RECIPE}


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
    out.mkdir(parents=True, exist_ok=True)
    train_set = load_cifar(recipe["dataset"], "train", root=data_root)
    test_set = load_cifar(recipe["dataset"], "test", root=data_root)
    validation = None
    if "held_out" in recipe:  # the validation split: never seen by the teacher
        train_set, validation = split_validation(train_set)
    seed_everything(recipe["seed"])
    model = build_model(recipe["arch"], len(train_set.classes))
    history = fit(model, train_set, test_set, epochs=recipe["epochs"], batch_size=recipe["batch_size"],
                  lr=recipe["lr"], weight_decay=recipe["weight_decay"], schedule=recipe["schedule"],
                  seed=recipe["seed"], device=device, desc=f"teacher {recipe['arch']}",
                  nesterov=recipe["optimizer"].endswith("nesterov"), eval_every=recipe.get("eval_every", 1),
                  checkpoint=out / f".{name}.training.pt")  # a stopped run goes on from its last epoch
    seconds = history.seconds
    dtype = torch.float16 if recipe.get("stored_as") == "float16" else None
    sha = save_checkpoint(model.cpu(), out / f"{name}.pt", recipe["arch"], dtype=dtype)
    stored = build_model(recipe["arch"], len(train_set.classes))
    load_checkpoint(stored, out / f"{name}.pt", sha256=sha)
    accuracy = evaluate(stored, test_set)  # of the weights as stored, not as trained
    manifest = {
        "name": name, "file": f"{name}.pt", "sha256": sha, "num_classes": len(train_set.classes),
        "recipe": recipe, "test_accuracy": round(accuracy, 2), "test_images": len(test_set),
        "train_seconds": round(seconds, 1),
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "precision": history.precision,
        "test_accuracy_per_epoch": [None if math.isnan(a) else round(a, 2) for a in history.column("test_acc")],
    }
    if validation is not None:
        manifest["validation_accuracy"] = round(evaluate(stored, validation), 2)
        manifest["validation_images"] = len(validation)
    tmp = out / f".{name}.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(out / f"{name}.json")  # the manifest last and whole: it vouches for the weights
    (out / f".{name}.training.pt").unlink(missing_ok=True)
    return manifest


def profile_teacher_recipe(profile, arch: str) -> dict:
    """The recipe of a profile's teacher ``arch``: the profile's own schedule on all the
    training images, as RepDistiller's ``train_teacher.py`` trains its CIFAR-100 teachers
    with the same 240-epoch recipe as its students."""
    return {"arch": arch, "dataset": profile.dataset, "train_images": "all", "epochs": profile.epochs,
            "batch_size": profile.batch_size, "lr": profile.lr, "schedule": profile.schedule,
            "weight_decay": 5e-4,
            "optimizer": "SGD momentum 0.9" + (" nesterov" if profile.nesterov else ""),
            "augmentation": TEACHER_RECIPE["augmentation"], "seed": 0}


def profile_teacher(profile, arch: str | None = None, data_root: str | None = None,
                    device: str | None = None) -> torch.nn.Module:
    """The teacher ``arch`` (default: the profile's) of a profile, ready to distil from.

    The CIFAR-10 resnet32 is the shipped checkpoint. Any other teacher (the paper
    profile's CIFAR-100 resnet32x4 and wrn_40_2) is trained with
    :func:`profile_teacher_recipe` the first time it is asked for, and stored with its
    manifest in ``$HINTLEARN_CACHE/zoo``; a stored teacher whose recipe differs is
    trained again.
    """
    arch = arch or profile.teacher
    if profile.dataset == TEACHER_RECIPE["dataset"] and arch == TEACHER_RECIPE["arch"]:
        return load_teacher()
    name, folder = f"{arch}_{profile.dataset}", cache_dir() / "zoo"
    recipe = profile_teacher_recipe(profile, arch)
    stored = folder / f"{name}.json"
    if stored.is_file():
        try:
            if json.loads(stored.read_text())["recipe"] == recipe:
                return load_teacher(name, folder)
        except (ValueError, KeyError, CheckpointError) as error:  # cut, corrupt or mismatched files
            print(f"the stored teacher {stored} is unusable ({type(error).__name__}: "
                  f"{str(error).splitlines()[0][:100]}); training it again")
    print(f"training the {profile.name} profile's teacher {arch} on {profile.dataset} "
          f"({recipe['epochs']} epochs); it is stored in {folder} for later runs")
    train_teacher(recipe, folder, device or profile.device, data_root, name=name)
    return load_teacher(name, folder)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Retrain one of the book's CIFAR-10 teachers.")
    parser.add_argument("--teacher", choices=sorted(SHIPPED_TEACHERS), default="resnet32_cifar10")
    parser.add_argument("--standard", action="store_true", help="resnet32 only: STANDARD_TEACHER_RECIPE "
                        "(200 epochs on the images outside the validation split; resumes when stopped)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the checkpoint and manifest "
                        "(default: the cache folder; pass hintlearn_mini/weights to replace the shipped one)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--data", default=None, help="data folder (default: $HINTLEARN_DATA)")
    args = parser.parse_args(argv)
    recipe = SHIPPED_TEACHERS[args.teacher]
    if args.standard:
        if args.teacher != "resnet32_cifar10":
            parser.error("--standard is the recipe of resnet32_cifar10")
        recipe = STANDARD_TEACHER_RECIPE
    recipe = dict(recipe, epochs=args.epochs or recipe["epochs"])
    manifest = train_teacher(recipe, args.out, args.device, args.data, name=args.teacher)
    print(json.dumps({k: manifest[k] for k in ("file", "sha256", "test_accuracy", "train_seconds", "device")}, indent=2))


if __name__ == "__main__":
    main()
