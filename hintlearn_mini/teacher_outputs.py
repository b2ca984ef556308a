"""Pay the frozen teacher once per view: a store of its logits for every augmented image.

A distiller's teacher never changes, so for the same input it always computes the same
outputs, whichever method, seed or chapter asks. The data pipeline makes the *input*
repeat too: in epoch ``e`` of a run with seed ``s``, image ``i`` is always shown under
the same crop and flip (``data.epoch_views``), whatever is being trained. So the
teacher's logits of an epoch can be computed once, in large inference batches, stored,
and read back by every later run with that seed: the idea of FKD (Shen & Xing 2022,
"A Fast Knowledge Distillation Framework for Visual Recognition"), which stores a
teacher's soft labels per random crop.

What it costs: one float32 row of ``classes`` numbers per image and epoch (CIFAR-10,
2,000 images: 80 kB an epoch, in memory and on disk). It serves the methods that read
only the teacher's *logits* (KD, whose ``reads_teacher_logits`` is True); feature
methods need the teacher's intermediate maps, 57 kB per image in bfloat16 for a CIFAR
ResNet, so they keep running the teacher in the loop.

Files: ``$HINTLEARN_CACHE/teacher-logits/<key>-epoch<e>.pt``, the key covering the
teacher's weights, the data's content, the seed, the precision and the view recipe. A
file that fails to load is recomputed (and says so); writes are atomic.

Chapter: ``book/01_teacher_and_student.ipynb``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import Tensor, nn

from .data import ImageSet, atomic_save, cache_dir
from .views import apply_views, epoch_views, normalize
from .hardware import autocast

__all__ = ["TeacherLogits", "weights_fingerprint", "VIEW_RECIPE"]

# What a view is; part of every key, so a change to the augmentation recomputes.
VIEW_RECIPE = "epoch_views v1: crop pad 4 + flip, generator seed*100003+epoch+7919"


def weights_fingerprint(model: nn.Module) -> str:
    """sha256 of a model's state (parameter and buffer names and values)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class TeacherLogits:
    """The teacher's logits for every training image under each epoch's views.

    ``store.epoch(e)`` returns a float32 tensor (N, classes) whose row ``i`` is the
    teacher's output for image ``i`` of ``data`` as :func:`data.batches` shows it in
    epoch ``e`` of a run with this ``seed``. It is computed on first use (teacher in
    eval mode, without gradients, under the run's precision) and kept in memory and
    on disk for every later run that shares teacher, data, seed and precision.
    """

    def __init__(self, teacher: nn.Module, data: ImageSet, seed: int, precision: str = "fp32",
                 device: str = "cpu", batch_size: int = 500, folder: Path | None = None):
        self.teacher, self.data, self.seed = teacher, data, seed
        self.precision, self.device, self.batch_size = precision, device, batch_size
        self.folder = Path(folder) if folder is not None else cache_dir() / "teacher-logits"
        blob = json.dumps({"teacher": weights_fingerprint(teacher), "data": data.fingerprint(),
                           "seed": seed, "precision": precision, "views": VIEW_RECIPE})
        self.key = hashlib.sha256(blob.encode()).hexdigest()[:20]
        self._epochs: dict[int, Tensor] = {}
        self.computed = self.read = 0  # epochs computed here / read from disk, for reports

    def path(self, epoch: int) -> Path:
        return self.folder / f"{self.key}-epoch{epoch:03d}.pt"

    def epoch(self, epoch: int) -> Tensor:
        """(N, classes) float32: the teacher's logits of every image in ``epoch``."""
        if epoch not in self._epochs:
            self._epochs[epoch] = self._load(epoch)
        return self._epochs[epoch]

    def _load(self, epoch: int) -> Tensor:
        path = self.path(epoch)
        if path.is_file():
            try:
                logits = torch.load(path, weights_only=True)
                if logits.shape[0] == len(self.data):
                    self.read += 1
                    return logits
                problem = f"it holds {logits.shape[0]} rows for {len(self.data)} images"
            except Exception as error:  # a cut or corrupt file: recompute it
                problem = f"it could not be read ({type(error).__name__})"
            print(f"teacher logits: {path} is unusable ({problem}); recomputing it")
        logits = self.compute(epoch)
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_save(logits, path)  # a killed run never leaves half a file
        self.computed += 1
        return logits

    @torch.no_grad()
    def compute(self, epoch: int) -> Tensor:
        """Run the teacher over all images under the epoch's views (no file involved)."""
        was_training = self.teacher.training
        self.teacher.eval()
        views = epoch_views(len(self.data), self.seed, epoch)
        out = []
        for start in range(0, len(self.data), self.batch_size):
            rows = torch.arange(start, min(start + self.batch_size, len(self.data)))
            x = normalize(apply_views(self.data.images[rows], views[rows]), self.data.name)
            x = x.to(self.device, memory_format=torch.channels_last)
            with autocast(self.precision, self.device):
                out.append(self.teacher(x).float().cpu())
        self.teacher.train(was_training)
        return torch.cat(out)
