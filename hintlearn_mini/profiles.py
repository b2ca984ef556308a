"""Sizes of every experiment in the book, chosen by one switch.

``get_profile()`` reads ``HINTLEARN_PROFILE`` (default ``"laptop"``); every notebook
takes its data size, epochs and seeds from the profile it gets, so one variable turns
the whole book from a CI smoke test into the papers' setting:

* ``quick``  — CI: every code path, tiny data; the whole book under nbval in minutes.
* ``laptop`` — the default and the stored outputs: students trained to their plateau
  on a class-balanced 1,000-image subset (100 per class) for 64 epochs, tested on all
  10,000 test images (``book/results/plateau.csv``: doubling the epochs adds about one
  point). A chapter trains one seed live, in about five minutes on two CPU cores with an
  empty run cache; its conclusions come from the benchmark's five seeds
  (``book/results/bench-laptop.csv``, ``python -m hintlearn_mini.bench``).
* ``paper``  — a GPU: CIFAR-100, the published pairs resnet32x4 → resnet8x4 and
  wrn_40_2 → wrn_16_2, and the 240-epoch schedule of the CRD benchmark (RepDistiller
  ``train_student.py``: batch 64, lr 0.05, ×0.1 at epochs 150, 180 and 210, 30
  initialisation epochs for two-stage methods). Its teachers are trained with the same
  recipe the first time they are needed (RepDistiller ``train_teacher.py``) and cached.

Two environment variables change *how* a profile computes, not what
(``hintlearn_mini.hardware``): ``HINTLEARN_DEVICE`` (``cpu`` by default) and
``HINTLEARN_PRECISION`` (``auto`` by default: bfloat16 autocast where the device computes
it natively, float32 elsewhere). Both are carried by the profile into ``fit``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import NamedTuple

from .hardware import PRECISIONS, native_bf16, resolve_device, resolve_precision

__all__ = ["Profile", "PROFILES", "get_profile", "load_experiment_data", "Splits", "load_experiment_splits",
           "fit_kwargs", "stage_one_kwargs"]


@dataclass(frozen=True)
class Profile:
    name: str
    dataset: str                # "cifar10" or "cifar100"
    teacher: str                # model name (hintlearn_mini.models)
    student: str
    train_per_class: int | None  # student's training images per class (None: all)
    test_per_class: int | None   # test images per class (None: the whole test set)
    epochs: int
    batch_size: int
    lr: float
    schedule: str               # "onecycle" or "step"
    seeds: tuple[int, ...]
    eval_every: int | None = None  # test-set evaluation every n epochs (None: last only)
    device: str = "cpu"
    pairs: tuple[tuple[str, str], ...] = ()  # the benchmark's (teacher, student) pairs; () = the one above
    init_epochs: int | None = None  # stage 1 of two-stage methods (None: half of ``epochs``)
    precision: str = "auto"     # "auto", "fp32" or "bf16" (hintlearn_mini.hardware)
    store_teacher_logits: bool = True  # KD reads the teacher's logits from a store (teacher_outputs)
    nesterov: bool = True       # SGD with Nesterov momentum (False: plain momentum, as RepDistiller)
    sync_batchnorm: bool = False  # on several GPUs (torchrun), BatchNorm over the global batch

    def resolved_precision(self) -> str:
        """``"fp32"`` or ``"bf16"``: what ``precision`` means on the profile's device."""
        return resolve_precision(self.precision, self.device)

    def teacher_student_pairs(self) -> tuple[tuple[str, str], ...]:
        return self.pairs or ((self.teacher, self.student),)

    def stage_one_epochs(self) -> int:
        return self.init_epochs if self.init_epochs is not None else max(1, self.epochs // 2)

    def for_pair(self, teacher: str, student: str) -> "Profile":
        """The same profile for another (teacher, student) pair."""
        return replace(self, teacher=teacher, student=student, pairs=())

    def describe(self) -> str:
        train = "all" if self.train_per_class is None else f"{self.train_per_class} per class"
        test = "all" if self.test_per_class is None else f"{self.test_per_class} per class"
        pairs = ", ".join(f"{t} -> {s}" for t, s in self.teacher_student_pairs())
        precision = self.resolved_precision()
        if self.precision == "auto":
            why = "native" if native_bf16(self.device) else "no native bf16"
            precision += f" (auto: {why} on {self.device})"
        return (f"profile {self.name!r}: {pairs} on {self.dataset}, "
                f"train images {train}, test images {test}, {self.epochs} epochs, batch "
                f"{self.batch_size}, lr {self.lr} ({self.schedule}), seeds {list(self.seeds)}; "
                f"device {self.device}, precision {precision}")


PROFILES = {
    "quick": Profile("quick", "cifar10", "resnet32", "resnet8", 40, 20, 2, 64, 0.05,
                     "onecycle", (0, 1), eval_every=1),
    "laptop": Profile("laptop", "cifar10", "resnet32", "resnet8", 100, None, 64, 64, 0.05,
                      "onecycle", (0,)),
    "paper": Profile("paper", "cifar100", "resnet32x4", "resnet8x4", None, None, 240, 64, 0.05,
                     "step", (0, 1, 2), eval_every=10, device="cuda",
                     pairs=(("resnet32x4", "resnet8x4"), ("wrn_40_2", "wrn_16_2")), init_epochs=30,
                     store_teacher_logits=False,  # 50,000 images × 240 epochs × 100 classes: 4.8 GB a seed
                     nesterov=False,  # RepDistiller's SGD
                     sync_batchnorm=True),  # N GPUs normalise as one GPU of batch 64 would
}


def get_profile(name: str | None = None) -> Profile:
    """The profile named ``name``, else ``$HINTLEARN_PROFILE``, else ``"laptop"``, with
    ``$HINTLEARN_DEVICE`` and ``$HINTLEARN_PRECISION`` applied when they are set."""
    name = name or os.environ.get("HINTLEARN_PROFILE", "laptop")
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)} "
                         f"(set HINTLEARN_PROFILE or pass the name)")
    profile = PROFILES[name]
    if os.environ.get("HINTLEARN_DEVICE"):
        profile = replace(profile, device=resolve_device())
    precision = os.environ.get("HINTLEARN_PRECISION") or profile.precision
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} in HINTLEARN_PRECISION; valid precisions: "
                         f"{', '.join(PRECISIONS)}")
    return replace(profile, precision=precision)


def load_experiment_data(profile: Profile, root=None):
    """The profile's ``(train_set, test_set)``: class-balanced subsets, fixed by seed 0.

    Every chapter trains its students on the same images, so their numbers compare.
    """
    from .data import balanced_subset, load_cifar

    train_set = load_cifar(profile.dataset, "train", root=root)
    if profile.train_per_class is not None:
        train_set = balanced_subset(train_set, profile.train_per_class, seed=0)
    return train_set, _test_images(profile, root)


def _test_images(profile: Profile, root=None):
    """The test images a profile evaluates on: all of them, or a class-balanced subset."""
    from .data import balanced_subset, load_cifar

    test_set = load_cifar(profile.dataset, "test", root=root)
    if profile.test_per_class is not None:
        test_set = balanced_subset(test_set, profile.test_per_class, seed=0)
    return test_set


class Splits(NamedTuple):
    """A profile's three sets of images (:func:`load_experiment_splits`)."""
    train: object       # ImageSet: the profile's training subset, outside the validation split
    validation: object  # ImageSet: the validation split, the same for every profile and seed
    test: object        # ImageSet: the test images the profile evaluates on


def load_experiment_splits(profile: Profile, root=None) -> Splits:
    """The profile's training, validation and test sets.

    The validation split (``data.split_validation``: 5,000 class-balanced training
    images) is carved out first; the training subset is drawn from the other images,
    class-balanced and fixed by seed 0. Settings are chosen on ``validation``; ``test``
    reports the chosen ones.
    """
    from .data import balanced_subset, load_cifar, split_validation

    every = load_cifar(profile.dataset, "train", root=root)
    rest, validation = split_validation(every)
    train_set = rest if profile.train_per_class is None else balanced_subset(rest, profile.train_per_class, seed=0)
    return Splits(train_set, validation, _test_images(profile, root))


def fit_kwargs(profile: Profile) -> dict:
    """The keyword arguments of :func:`hintlearn_mini.train.fit` that the profile fixes."""
    return {"epochs": profile.epochs, "batch_size": profile.batch_size, "lr": profile.lr,
            "schedule": profile.schedule, "eval_every": profile.eval_every, "device": profile.device,
            "precision": profile.resolved_precision(), "store_teacher_logits": profile.store_teacher_logits,
            "nesterov": profile.nesterov, "sync_batchnorm": profile.sync_batchnorm}


def stage_one_kwargs(profile: Profile) -> dict:
    """``fit`` arguments of stage 1 of a two-stage method (FitNets' hints, FSP): the
    profile's settings for ``profile.stage_one_epochs()`` epochs at a constant learning
    rate, as RepDistiller's ``helper/pretrain.py`` trains it."""
    return dict(fit_kwargs(profile), epochs=profile.stage_one_epochs(), schedule="constant",
                eval_every=None)
