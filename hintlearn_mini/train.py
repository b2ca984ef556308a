"""One training loop for a plain model or a distiller, with evaluation and a history.

``fit(module, train_set, test_set, ...)`` trains either

* a plain classifier (``module(x)`` returns logits; the loss is cross-entropy), or
* a :class:`hintlearn_mini.methods.Distiller` (``module(x, y, index)`` returns the
  student's logits and a dict of named losses; the total is their sum).

SGD with Nesterov momentum and weight decay (the recipe of the CIFAR distillation
papers), and either a one-cycle schedule (short CPU budgets) or the papers' step decay.
Everything random is seeded, so the same seed gives the same numbers on a CPU, in
float32 and in bfloat16. A NaN or infinite loss stops the run at once with the epoch,
step and term named.

Speed (``hintlearn_mini.hardware``, measured in chapter 1): the forward passes run
under bfloat16 autocast where the device computes it natively (``precision``), batches
and networks are stored channels-last, and a distiller that reads only the teacher's
logits gets them from a store computed once per view (``teacher_outputs``).

Chapter: ``book/01_teacher_and_student.ipynb``.
"""
from __future__ import annotations

import contextlib
import math
import os
import statistics
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from .data import ImageSet, atomic_save
from .distributed import is_writer, my_shard, processes, synchronised_batchnorm
from .views import batches
from .hardware import autocast, resolve_device, resolve_precision
from .losses import ce_loss

__all__ = ["History", "fit", "evaluate", "predict", "seed_everything", "step_time", "operator_times",
           "NonFiniteLossError", "CheckpointMismatchError"]


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite during training."""


class CheckpointMismatchError(ValueError):
    """A training checkpoint was written by a run with other settings than this one."""


@dataclass
class History:
    """Per-epoch record of a run: mean of each loss term, accuracies, seconds."""

    seed: int
    epochs: list[dict] = field(default_factory=list)
    cached: bool = False  # read back from the run cache (hintlearn_mini.runs)
    precision: str = "fp32"  # of the forward passes: "fp32" or "bf16"

    def column(self, key: str) -> list[float]:
        return [row[key] for row in self.epochs]

    @property
    def final_accuracy(self) -> float:
        """Test accuracy (%) after the last epoch (not the best epoch)."""
        return self.epochs[-1]["test_acc"]

    @property
    def final_validation_accuracy(self) -> float:
        """Validation accuracy (%) after the last epoch; NaN for a run without a
        validation set (``fit(validation_set=...)``)."""
        return self.epochs[-1].get("val_acc", float("nan"))

    @property
    def seconds(self) -> float:
        return sum(self.column("seconds"))


def seed_everything(seed: int) -> None:
    """Seed PyTorch's global generator (model initialisation, dropout)."""
    torch.manual_seed(seed)


def _student(module: nn.Module) -> nn.Module:
    return getattr(module, "student", module)


def _is_distiller(module: nn.Module) -> bool:
    from .methods import Distiller  # the running layer may import the methods layer

    return isinstance(module, Distiller)


@torch.no_grad()
def predict(model: nn.Module, data: ImageSet, batch_size: int = 500) -> Tensor:
    """Logits of ``model`` (in eval mode) for every image of ``data``: (N, classes)."""
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    out = torch.cat([model(x.to(device)).cpu() for x, _, _ in batches(data, batch_size)])
    model.train(was_training)
    return out


def evaluate(model: nn.Module, data: ImageSet, batch_size: int = 500) -> float:
    """Top-1 accuracy (%) of ``model`` on ``data``. A distiller is judged by its student."""
    logits = predict(_student(model), data, batch_size)
    return 100.0 * (logits.argmax(1) == data.labels).float().mean().item()


def _losses(module: nn.Module, x: Tensor, y: Tensor, index: Tensor, distiller: bool):
    if distiller:
        return module(x, y, index=index)
    logits = module(x)
    return logits, {"ce": ce_loss(logits, y)}


def _check_finite(losses: dict[str, Tensor], epoch: int, step: int) -> None:
    for name, value in losses.items():
        if not torch.isfinite(value).all():
            raise NonFiniteLossError(
                f"loss term {name!r} is {value.detach().flatten()[0].item()} at epoch {epoch}, "
                f"step {step}; training stopped. Lower the learning rate or the weight of "
                f"{name!r}, or check the inputs of this loss.")


def make_optimizer(params, lr: float, weight_decay: float = 5e-4, nesterov: bool = True) -> torch.optim.Optimizer:
    """SGD, momentum 0.9, weight decay: the recipe of the CIFAR papers. Nesterov
    momentum by default (the book's short budgets); RepDistiller, whose recipe the
    paper profile follows, uses plain momentum (``nesterov=False``)."""
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=nesterov, weight_decay=weight_decay)


def make_scheduler(optimizer, schedule: str, epochs: int, steps_per_epoch: int):
    """``"onecycle"`` (stepped per batch), ``"step"`` (×0.1 at 62.5 %, 75 %, 87.5 % of
    the epochs: 150/180/210 of 240 as in the papers, stepped per epoch) or
    ``"constant"`` (the stage 1 of two-stage methods in RepDistiller's ``pretrain.py``)."""
    if schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
    if schedule == "onecycle":
        max_lr = optimizer.param_groups[0]["lr"]
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=max_lr, epochs=epochs, steps_per_epoch=steps_per_epoch)
    if schedule == "step":
        milestones = [round(epochs * f) for f in (0.625, 0.75, 0.875)]
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)
    raise ValueError(f"unknown schedule {schedule!r}; valid schedules: 'onecycle', 'step', 'constant'")


def fit(module: nn.Module, train_set: ImageSet, test_set: ImageSet | None = None, *,
        epochs: int, batch_size: int = 128, lr: float = 0.05, weight_decay: float = 5e-4,
        schedule: str = "onecycle", seed: int = 0, parameters=None, progress: bool = True,
        desc: str | None = None, epoch_callback=None, device: str | None = None,
        eval_every: int | None = 1, channels_last: bool = True, precision: str | None = None,
        store_teacher_logits: bool = False, nesterov: bool = True, checkpoint: str | os.PathLike | None = None,
        validation_set: ImageSet | None = None, sync_batchnorm: bool = False) -> History:
    """Train ``module`` on ``train_set`` and evaluate it on ``test_set`` after each epoch.

    Args:
        module: a classifier or a ``Distiller``.
        parameters: what the optimiser updates; default: every parameter of ``module``
            that requires a gradient (a distiller's frozen teacher never does).
        seed: seeds the batch order and the augmentation (seed the model's
            initialisation yourself, before building it, with :func:`seed_everything`).
        epoch_callback: called as ``epoch_callback(epoch, module)`` after each epoch.
        device: ``"cpu"``, ``"cuda"`` or ``"mps"``; default ``$HINTLEARN_DEVICE``, else
            ``"cpu"`` (the book's stored outputs come from a CPU).
        precision: ``"auto"``, ``"fp32"`` or ``"bf16"``; default ``$HINTLEARN_PRECISION``,
            else ``"auto"``: bfloat16 autocast for the forward passes (teacher and
            student) where ``device`` computes it natively, float32 elsewhere. Loss
            terms, weights, optimiser state and BatchNorm statistics stay float32.
        store_teacher_logits: for a distiller that reads only the teacher's logits
            (KD), take them from :class:`teacher_outputs.TeacherLogits`, computed once
            per (teacher, data, seed, precision, epoch) and shared by every such run.
        validation_set: evaluated whenever ``test_set`` is (``val_acc`` of the history):
            the images settings are chosen on (``data.split_validation``), never trained on.
        eval_every: evaluate on ``test_set`` every this many epochs (``None``: only
            after the last epoch, which is always evaluated; other rows hold NaN).
        nesterov: Nesterov momentum (the book's CIFAR-10 recipe); ``False`` is the
            plain momentum of RepDistiller, which the paper profile follows.
        channels_last: store the networks and batches channels-last, which speeds up
            small convolutions on a CPU by about a third; the numbers are the same.
        sync_batchnorm: under torch.distributed on GPUs, BatchNorm statistics over the
            global batch (``SyncBatchNorm``) instead of each process's share; the module
            holds plain BatchNorm layers again when ``fit`` returns.
        checkpoint: a file in which a classifier's training is saved after every epoch
            (weights, optimiser, schedule, history). If it exists, training goes on
            after its last epoch: a run killed after epoch k and started again ends with
            the numbers of an uninterrupted one, since each epoch's batches and views
            depend on (seed, epoch) only. For long runs (a teacher); distillers are short
            runs that ``runs.cached_fit`` caches whole.

    Under ``torch.distributed`` (started by ``torchrun``; ``hintlearn_mini.distributed``),
    every process goes through the same global batches of ``batch_size`` and trains on
    its contiguous share of each; DistributedDataParallel averages the gradients, so
    ``batch_size`` and ``lr`` are those of the global batch. The history's losses and
    training accuracy are this process's share's; every process evaluates the whole
    test set (no image counted twice); one process writes the checkpoint.

    Returns:
        a :class:`History`: per epoch the mean of every loss term over the batches,
        the training accuracy on the augmented batches, the test accuracy and seconds.
    """
    distiller = _is_distiller(module)
    device = resolve_device(str(device) if device is not None else None)
    precision = resolve_precision(precision, device)
    module.to(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    module.to(memory_format=memory_format)
    params = [p for p in (parameters if parameters is not None else module.parameters()) if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: no parameter requires a gradient")
    steps = math.ceil(len(train_set) / batch_size)
    optimizer = make_optimizer(params, lr, weight_decay, nesterov)
    scheduler = make_scheduler(optimizer, schedule, epochs, steps)
    store = None
    if store_teacher_logits and distiller and module.reads_teacher_logits:
        from .teacher_outputs import TeacherLogits

        store = TeacherLogits(module.teacher, train_set, seed, precision, device)
    history = History(seed=seed, precision=precision)
    first = 1
    settings = None
    if checkpoint is not None:
        if distiller:
            raise ValueError("checkpoint= resumes a classifier's long run (a teacher); a distiller's "
                             "run is cached whole by hintlearn_mini.runs.cached_fit")
        settings = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
                    "schedule": schedule, "seed": seed, "precision": precision, "nesterov": nesterov,
                    "data": train_set.fingerprint()}
        first = _resume(checkpoint, settings, module, optimizer, scheduler, history)
    trained = [c for name, c in module.named_children() if name != "teacher"] if distiller else [module]
    with synchronised_batchnorm(trained, device) if sync_batchnorm else contextlib.nullcontext():
        trainer = _across_processes(module, distiller, find_unused=parameters is not None)

        def train_step(x: Tensor, y: Tensor, index: Tensor, epoch: int, step: int):
            if distiller:
                module.set_progress(((epoch - 1) + (step - 1) / steps) / epochs)
            x = x.to(device, memory_format=memory_format, non_blocking=True)
            y = y.to(device, non_blocking=True)
            with autocast(precision, device):  # forward passes only; backward follows autocast's casts
                logits, losses = _losses(trainer, x, y, index, distiller)
            _check_finite(losses, epoch, step)
            optimizer.zero_grad(set_to_none=True)
            sum(losses.values()).backward()
            optimizer.step()
            if schedule == "onecycle":
                scheduler.step()
            return logits, losses

        bar = tqdm(range(first, epochs + 1), desc=desc or type(module).__name__, unit="epoch",
                   disable=not progress or not is_writer(), initial=first - 1, total=epochs)
        try:
            for epoch in bar:
                start = time.perf_counter()
                if store is not None:  # the teacher's logits of this epoch's views
                    module.stored_teacher_logits = store.epoch(epoch)
                row = _train_epoch(module, train_set, batch_size, seed, epoch, train_step)
                if schedule != "onecycle":
                    scheduler.step()
                due = epoch == epochs or (eval_every is not None and epoch % eval_every == 0)
                row["test_acc"] = evaluate(module, test_set) if test_set is not None and due else float("nan")
                if validation_set is not None:
                    row["val_acc"] = evaluate(module, validation_set) if due else float("nan")
                row["seconds"] = time.perf_counter() - start
                history.epochs.append(row)
                if checkpoint is not None and is_writer():  # one process writes it
                    atomic_save({"settings": settings, "module": module.state_dict(),
                                 "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                                 "epochs": history.epochs}, Path(checkpoint))
                if epoch_callback is not None:
                    epoch_callback(epoch, module)
                bar.set_postfix(loss=f"{row['loss']:.3f}", train_acc=f"{row['train_acc']:.1f}")
        finally:
            if distiller:
                module.stored_teacher_logits = None
    return history


def _across_processes(module: nn.Module, distiller: bool, find_unused: bool) -> nn.Module:
    """``module`` itself for one process; under torch.distributed, ``module`` wrapped in
    DistributedDataParallel, which averages the trainable parameters' gradients over the
    processes and, before each forward pass, copies process 0's buffers (the BatchNorm
    statistics) to the others. Left out of both: the frozen teacher (the same on every
    process by construction) and every submodule marked ``same_on_every_process`` (CRD's
    memory bank, which every process updates with every process's rows: copying it
    would cost 51 MB a step and hide a bank that drifted). ``find_unused``: some
    trainable parameters get no gradient (a stage 1 that trains part of the student)."""
    if processes()[1] == 1:
        return module
    kept = [module.teacher] if distiller else []
    kept += [m for m in module.modules() if getattr(m, "same_on_every_process", False)]
    left_out = [name for prefix, part in module.named_modules() if part in kept
                for name, _ in [*part.named_parameters(prefix), *part.named_buffers(prefix)]]
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, left_out)
    # a 1×1 convolution's weight (C, C', 1, 1) is both channels-last and contiguous; DDP's
    # buckets take one layout, autograd the other: a copy per step, not an error
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    return DistributedDataParallel(module, find_unused_parameters=find_unused)


def _resume(checkpoint, settings: dict, module, optimizer, scheduler, history: History) -> int:
    """Load a training checkpoint written by :func:`fit` with the same ``settings``; the
    first epoch still to train (1 when there is none)."""
    path = Path(checkpoint)
    if not path.is_file():
        return 1
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state["settings"] != settings:
        changed = {k: (state["settings"].get(k), v) for k, v in settings.items() if state["settings"].get(k) != v}
        raise CheckpointMismatchError(
            f"the training checkpoint {path} was written by a run with other settings "
            f"(setting: (checkpoint's, this run's)) {changed}; delete {path} to start this run afresh, "
            f"or pass the checkpoint's settings to go on with it")
    module.load_state_dict(state["module"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    history.epochs.extend(state["epochs"])
    return len(state["epochs"]) + 1


def _train_epoch(module: nn.Module, train_set: ImageSet, batch_size: int, seed: int, epoch: int,
                 train_step) -> dict:
    """One pass over ``train_set``: the mean of every loss term and the training accuracy."""
    module.train()
    sums: dict[str, float] = {}
    correct = seen = 0
    for step, batch in enumerate(batches(train_set, batch_size, True, seed, epoch), 1):
        x, y, index = my_shard(*batch)  # under torch.distributed, this process's share
        logits, losses = train_step(x, y, index, epoch, step)
        for name, value in losses.items():
            sums[name] = sums.get(name, 0.0) + value.item() * len(y)
        correct += (logits.argmax(1).cpu() == y).sum().item()
        seen += len(y)
    row = {"epoch": epoch, **{name: total / seen for name, total in sums.items()}}
    row["loss"] = sum(row[name] for name in sums)
    row["train_acc"] = 100.0 * correct / seen
    return row


def _training_steps(module: nn.Module, data: ImageSet, batch_size: int, seed: int = 0,
                    precision: str | None = None):
    """Endless training steps of ``module`` as ``fit`` runs them, one closure per full batch.

    Each closure runs the forward pass (a distiller's teacher included) under the
    precision of :func:`fit`, backward pass and optimiser step on a channels-last batch
    that is already prepared, so that timing or profiling a call measures the step and
    not the data augmentation. (CPU only.)
    """
    distiller = _is_distiller(module)
    precision = resolve_precision(precision, "cpu")
    module.to(memory_format=torch.channels_last).train()
    optimizer = make_optimizer([p for p in module.parameters() if p.requires_grad], lr=0.01)

    def step(x, y, index):
        with autocast(precision, "cpu"):
            _, losses = _losses(module, x, y, index, distiller)
        optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        optimizer.step()

    epoch = 0
    while True:
        for x, y, index in batches(data, batch_size, True, seed, epoch):
            if len(y) == batch_size:
                x = x.contiguous(memory_format=torch.channels_last)
                yield lambda x=x, y=y, index=index: step(x, y, index)
        epoch += 1


def step_time(module: nn.Module, data: ImageSet, batch_size: int = 64, steps: int = 8, warmup: int = 3,
              seed: int = 0, precision: str | None = None) -> float:
    """Median milliseconds of one training step of ``module`` as ``fit`` runs it: the
    forward pass (a distiller's teacher included), backward pass and optimiser step, on
    channels-last batches of ``data``, in ``precision`` (default: as ``fit``'s).
    The module is trained by the measurement."""
    times = []
    for _, step in zip(range(warmup + steps), _training_steps(module, data, batch_size, seed, precision)):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times[warmup:])


def operator_times(module: nn.Module, data: ImageSet, batch_size: int = 64, steps: int = 5,
                   warmup: int = 2, seed: int = 0, precision: str | None = None) -> dict[str, float]:
    """Milliseconds per training step spent in each operator, measured by ``torch.profiler``.

    The steps are those of :func:`step_time`; an operator's time is its *self* CPU time
    (without the operators it calls), so the values add up to the whole step.
    Returns ``{"aten::convolution_backward": 41.7, ...}``, largest first.
    """
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # else the profiler prints its start/stop to stderr
    from torch.profiler import ProfilerActivity, profile

    run = _training_steps(module, data, batch_size, seed, precision)
    for _ in range(warmup):
        next(run)()
    prepared = [next(run) for _ in range(steps)]
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for step in prepared:
            step()
    totals = {e.key: e.self_cpu_time_total / 1000 / steps for e in prof.key_averages()}
    return dict(sorted(totals.items(), key=lambda kv: kv[1], reverse=True))
