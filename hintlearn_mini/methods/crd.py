"""CRD: Contrastive Representation Distillation (Tian, Krishnan & Isola, ICLR 2020).

The student's and the teacher's pooled features are embedded (linear layer to 128
dimensions, then L2 normalisation) and trained so that the embeddings of the *same*
image agree while those of K other images (negatives) do not. The negatives' embeddings
come from two memory banks of the whole training set, one per network, updated with
momentum; the critic is an exponential of the inner product at temperature τ, divided
by a normalising constant Z estimated on the first batch, and the objective is NCE
against a uniform noise distribution (``losses.nce_loss``), in both directions:

    L_CRD = NCE(teacher embedding vs student bank) + NCE(student embedding vs teacher bank)

Defaults follow the authors' code (RepDistiller ``crd/``): K = 16384, τ = 0.07,
momentum 0.5, 128 dimensions, β = 0.8, both embeddings trained, negatives drawn from
the other classes. Two choices of ours, both stated in the chapter:

* scores: the official code gathers a (B, K+1, 128) block of bank rows per side. When
  the bank is not much larger than K, one matrix product against the whole bank
  followed by picking the sampled columns gives the same scores, far faster;
  :class:`ContrastMemory` picks the form by the sizes.
* K is lowered (with a warning) when the training set has fewer negatives than K.

Under ``torch.distributed`` (several processes, each with a shard of the batch) the banks
stay *one* bank: every process gathers all processes' (indices, student embeddings,
teacher embeddings) and applies the same update, and Z is the mean score over the whole
global batch, as MoCo shares its queue (``hintlearn_mini.distributed``). Without it each process's bank would learn only
its own shard and drift from the others.

Chapter: ``book/06_crd.ipynb``.
"""
from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..distributed import all_rows, global_mean, my_shard
from ..views import contrast_indices
from ..hardware import float32_loss
from ..losses import info_nce_loss, nce_loss
from .base import Distiller, output_terms, probe_features

__all__ = ["Embed", "ContrastMemory", "CRD"]


class Embed(nn.Module):
    """Linear map to ``dim`` dimensions (with bias), then division by the L2 norm."""

    def __init__(self, in_features: int, dim: int = 128):
        super().__init__()
        self.linear = nn.Linear(in_features, dim)

    def forward(self, x: Tensor) -> Tensor:  # (B, d) -> (B, dim), unit rows, float32
        z = self.linear(x.flatten(1)).float()  # the norm in float32, also under bf16 autocast
        return z / z.pow(2).sum(1, keepdim=True).sqrt()


class ContrastMemory(nn.Module):
    """Two memory banks of N × dim embeddings (student side, teacher side) and the
    contrastive scores of a batch against them.

    Memory: 2 · N · dim floats (N = 50,000, dim = 128: 25.6 MB per bank in fp32).
    Banks, scores and the normalising constants are float32 under any autocast.
    Under torch.distributed every process holds the whole bank and applies the same
    updates (``same_on_every_process``: DistributedDataParallel leaves it alone).
    """

    same_on_every_process = True

    def __init__(self, dim: int, n_data: int, k: int, tau: float = 0.07, momentum: float = 0.5):
        super().__init__()
        self.n_data, self.k, self.tau, self.momentum = n_data, k, tau, momentum
        bound = 1.0 / math.sqrt(dim / 3)
        self.register_buffer("student_bank", torch.rand(n_data, dim) * 2 * bound - bound)
        self.register_buffer("teacher_bank", torch.rand(n_data, dim) * 2 * bound - bound)
        self.register_buffer("z", torch.tensor([-1.0, -1.0]))  # normalising constants, set once

    def use_full_bank(self) -> bool:
        """Score against the whole bank when it is at most 8 × (K+1) rows (cheaper than
        gathering a (B, K+1, dim) block per side); gather otherwise."""
        return self.n_data <= 8 * (self.k + 1)

    def _scores(self, anchor: Tensor, bank: Tensor, idx: Tensor) -> Tensor:
        # exp(<bank[idx[b, k]], anchor[b]> / tau), shape (B, K+1)
        if self.use_full_bank():
            logits = anchor @ bank.t()                          # (B, N)
            logits = logits.gather(1, idx)                      # (B, K+1): the sampled columns
        else:
            rows = bank[idx]                                    # (B, K+1, dim)
            logits = torch.bmm(rows, anchor.unsqueeze(2)).squeeze(2)
        return torch.exp(logits / self.tau)

    @float32_loss
    def forward(self, student_embed: Tensor, teacher_embed: Tensor, index: Tensor, idx: Tensor):
        """Scores divided by Z, each (B, K+1, 1): (teacher anchored, student anchored)."""
        if int(index.max()) >= self.n_data:
            raise ValueError(f"dataset index {int(index.max())} but the memory bank has {self.n_data} rows: "
                             f"build CRD with n_data = the size of the training set you train on")
        teacher_scores = self._scores(teacher_embed, self.student_bank.detach(), idx)
        student_scores = self._scores(student_embed, self.teacher_bank.detach(), idx)
        if self.z[0] < 0:  # first call: Z = mean score × N (over every process's shard), then frozen
            self.z[0] = global_mean(teacher_scores.detach()) * self.n_data
            self.z[1] = global_mean(student_scores.detach()) * self.n_data
        self.update(student_embed, teacher_embed, index)
        return (teacher_scores / self.z[0]).unsqueeze(2), (student_scores / self.z[1]).unsqueeze(2)

    @torch.no_grad()
    def update(self, student_embed: Tensor, teacher_embed: Tensor, index: Tensor) -> None:
        """bank[i] <- normalise(m · bank[i] + (1 − m) · embedding), for each dataset index i.

        Written out of place (a new bank tensor): this step's scores still need the old
        bank for their backward pass. Under torch.distributed, with every process's rows.
        """
        index, student_embed, teacher_embed = all_rows(index, student_embed.detach(), teacher_embed.detach())
        for name, embed in (("student_bank", student_embed), ("teacher_bank", teacher_embed)):
            bank = getattr(self, name)
            mixed = bank[index] * self.momentum + embed.detach() * (1 - self.momentum)
            setattr(self, name, bank.index_copy(0, index, F.normalize(mixed, dim=1)))


class CRD(Distiller):
    """Loss = ce_weight·CE + kd_weight·KD_T + beta·L_CRD; needs each sample's dataset index.

    ``train_labels`` are the labels of the whole training set (negatives are drawn from
    the other classes); the memory banks have one row per training sample. ``seed``
    seeds the draws of the negatives; by default it is drawn from PyTorch's global
    generator, so the run seed (``seed_everything`` before building) decides it.
    ``in_batch=True`` is the benchmark's diagnostic: the same embeddings trained with
    the in-batch InfoNCE of chapter 6 (``losses.info_nce_loss``) instead of the bank.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, train_labels: Tensor, k: int = 16384,
                 tau: float = 0.07, momentum: float = 0.5, dim: int = 128, beta: float = 0.8,
                 ce_weight: float = 1.0, kd_weight: float = 0.0, T: float = 4.0, seed: int | None = None,
                 in_batch: bool = False):
        super().__init__(student, teacher)
        n_data = len(train_labels)
        pool = n_data - int(torch.bincount(train_labels).max())
        if k > pool:
            warnings.warn(f"CRD: K={k} negatives requested but the training set has only {pool} samples "
                          f"outside the largest class; using K={pool}.", stacklevel=3)  # the caller of CRD(...)
            k = pool
        self.register_buffer("train_labels", train_labels.clone(), persistent=False)
        self.embed_student = Embed(probe_features(student).pooled.shape[1], dim)
        self.embed_teacher = Embed(probe_features(teacher).pooled.shape[1], dim)
        self.memory = ContrastMemory(dim, n_data, k, tau, momentum)
        self.k, self.beta, self.ce_weight, self.kd_weight, self.T = k, beta, ce_weight, kd_weight, T
        self.in_batch = in_batch  # the diagnostic: in-batch InfoNCE instead of the memory bank
        if seed is None:  # drawn from the global generator: seed_everything(run seed) fixes it
            seed = int(torch.randint(2**31 - 1, ()).item())
        self.generator = torch.Generator().manual_seed(seed)  # the negatives' draws

    def forward(self, x: Tensor, y: Tensor, index: Tensor | None = None):
        if index is None:
            raise ValueError("CRD needs each sample's dataset index: call it as distiller(x, y, index) "
                             "(hintlearn_mini.views.batches yields it)")
        logits, student_feats = self.student(x, features=True)
        teacher_logits, teacher_feats = self.teacher_forward(x, features=True)
        e_s = self.embed_student(student_feats.pooled)          # (B, 128)
        e_t = self.embed_teacher(teacher_feats.pooled)          # (B, 128)
        if self.in_batch:  # B − 1 negatives from the batch, any class; no memory
            losses = {"crd": self.beta * info_nce_loss(e_s, e_t, self.memory.tau)}
        else:
            # (B, K+1); under torch.distributed every process draws the negatives of the whole
            # global batch and keeps its share's rows, so they are the one-process draws
            everyone = all_rows(index.to(x.device))[0]
            idx = my_shard(contrast_indices(self.train_labels, everyone, self.k, self.generator))[0]
            idx = idx.to(x.device)
            p_t, p_s = self.memory(e_s, e_t, index.to(x.device), idx)
            n = self.memory.n_data
            losses = {"crd": self.beta * (nce_loss(p_t, n) + nce_loss(p_s, n))}
        losses.update(output_terms(logits, y, teacher_logits, self.ce_weight, self.kd_weight, self.T))
        return logits, losses
