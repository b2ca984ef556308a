"""Training throughput: every method's images per second against a plain float32 loop
and against KD with the teacher in the loop (chapter 8's table of step costs).

The speeds are measured over whole epochs of ``fit`` (augmentation included, as a run
trains), in interleaved rounds in one process, so that a slow spell of a noisy machine
hits every method alike; each speed is the median over the rounds.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .. import methods
from ..losses import kd_loss
from ..profiles import Profile, fit_kwargs, load_experiment_data
from ..teacher_outputs import TeacherLogits
from ..train import fit, make_optimizer
from ..views import batches
from ..zoo import profile_teacher
from . import recipes
from .recipes import Build, student

__all__ = ["StepCase", "STEP_CASES", "KD_IN_THE_LOOP", "KD_FROM_THE_STORE", "step_costs", "plain_loop", "STEP_FIELDS", "SPEED_EPOCHS"]

STEP_FIELDS = ["method", "images_per_s", "step_ms", "speed_vs_plain", "cost_vs_kd", "precision"]
SPEED_EPOCHS = 2  # a speed is the last of these epochs; the first warms up


@dataclass(frozen=True)
class StepCase:
    """One row of the step costs: the module ``build`` makes (a recipe's), trained with
    these ``fit`` options; ``first_run``: at a seed whose teacher logits are not stored."""

    name: str
    build: Build
    fit_options: dict = field(default_factory=dict)
    first_run: bool = False


KD_IN_THE_LOOP = StepCase("KD, teacher in the loop", recipes.KD.build, {"store_teacher_logits": False})
KD_FROM_THE_STORE = StepCase("KD", recipes.KD.build)  # the teacher's logits read from the store
STEP_CASES = (
    StepCase("student alone", recipes.STUDENT_ALONE.build),
    KD_IN_THE_LOOP,
    KD_FROM_THE_STORE,
    StepCase("KD, first run at a seed", recipes.KD.build, first_run=True),
    StepCase("FitNets", recipes.FITNETS_ONE_STAGE.build),
    StepCase("AT", recipes.AT.build),
    StepCase("FSP", lambda p, t, d, s: methods.FSP(s, t, ce_weight=1.0)),  # its loss with the labels' CE
    StepCase("CRD", recipes.CRD.build),
    StepCase("ReviewKD", recipes.REVIEWKD.build),
)


def plain_loop(student: torch.nn.Module, teacher: torch.nn.Module, train_set, batch_size: int,
               seed: int = 0, T: float = 4.0) -> float:
    """One epoch of the plainest float32 KD loop; returns its images per second.

    The teacher's forward pass under ``no_grad``, the student's forward and backward,
    SGD with the package's augmentation (``views.batches``): no channels-last, no
    autocast, no stored logits. The reference of the speed targets ("at least 2.2× the
    images per second of the plain loop").
    """
    student.to(memory_format=torch.contiguous_format).train()
    teacher.to(memory_format=torch.contiguous_format).eval()
    optimizer = make_optimizer(student.parameters(), lr=0.01)
    start = time.perf_counter()
    for x, y, _ in batches(train_set, batch_size, True, seed, 1):
        with torch.no_grad():
            teacher_logits = teacher(x)
        logits = student(x)
        loss = 0.1 * F.cross_entropy(logits, y) + 0.9 * kd_loss(logits, teacher_logits, T)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return len(train_set) / (time.perf_counter() - start)


def _epoch_speed(module, profile: Profile, train_set, seed: int, **overrides) -> float:
    """Images per second of the last of ``SPEED_EPOCHS`` epochs of ``fit``."""
    kwargs = dict(fit_kwargs(profile), epochs=SPEED_EPOCHS, eval_every=None, **overrides)
    history = fit(module, train_set, None, seed=seed, progress=False, **kwargs)
    return len(train_set) / history.epochs[-1]["seconds"]


def _forget_stored_logits(teacher, train_set, seed: int, profile: Profile) -> None:
    """Delete a seed's stored teacher logits (the epochs ``_epoch_speed`` trains), so that
    the next KD run at that seed computes them: a first run, even if an earlier
    measurement stored them."""
    store = TeacherLogits(teacher, train_set, seed, profile.resolved_precision(), profile.device)
    for epoch in range(1, SPEED_EPOCHS + 1):  # fit counts epochs from 1
        store.path(epoch).unlink(missing_ok=True)


def step_costs(profile: Profile, teacher=None, train_set=None, rounds: int = 3, cases=STEP_CASES) -> list[dict]:
    """Training throughput of every case, in alternation, against a plain float32 loop
    and against KD with the teacher in the loop (for the profile's first pair).

    Rows: ``images_per_s`` (median over the rounds), ``step_ms`` (per batch),
    ``speed_vs_plain`` (images/s ÷ the plain loop's: higher is faster) and
    ``cost_vs_kd`` (time per image ÷ KD's with the teacher in the loop: the per-step
    targets' measure, lower is cheaper). "KD" reads the teacher's logits from the store
    (warm: computed once before the rounds); "KD, first run at a seed" computes them.
    """
    if train_set is None:
        train_set, _ = load_experiment_data(profile)
    profile = profile.for_pair(*profile.teacher_student_pairs()[0])
    teacher = teacher if teacher is not None else profile_teacher(profile)
    make = lambda case: case.build(profile, teacher, train_set, student(profile))  # noqa: E731
    _epoch_speed(make(KD_FROM_THE_STORE), profile, train_set, seed=0)  # fills the store
    plain_name = "plain float32 loop"
    speeds = {name: [] for name in [plain_name, *(case.name for case in cases)]}
    for round_ in range(rounds):  # interleaved rounds: a slow spell of the machine hits every case
        speeds[plain_name].append(plain_loop(student(profile), teacher, train_set, profile.batch_size))
        for case in cases:
            seed = 1000 + round_ if case.first_run else 0  # a first run: a seed whose logits are not stored
            if case.first_run:
                _forget_stored_logits(teacher, train_set, seed, profile)
            speeds[case.name].append(_epoch_speed(make(case), profile, train_set, seed, **case.fit_options))
    median = {name: statistics.median(v) for name, v in speeds.items()}
    plain, kd_loop = median[plain_name], median[KD_IN_THE_LOOP.name]
    precision = {name: profile.resolved_precision() for name in median} | {plain_name: "fp32"}
    return [{"method": name, "images_per_s": round(v), "step_ms": round(1000 * profile.batch_size / v, 1),
             "speed_vs_plain": round(v / plain, 2), "cost_vs_kd": round(kd_loop / v, 2),
             "precision": precision[name]} for name, v in median.items()]
