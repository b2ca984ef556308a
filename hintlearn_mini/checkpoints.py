"""Save and load model weights with a sha256 check, and never load half a file.

A checkpoint is one ``torch.save`` file holding ``{"format", "arch", "state_dict",
"meta"}``. :func:`save_checkpoint` returns the file's sha256; :func:`load_checkpoint`
checks it (when given), checks that every tensor's name and shape matches the model,
and only then copies the weights. Each failure says what was wrong and how to fix it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from .data import atomic_save

__all__ = ["save_checkpoint", "load_checkpoint", "sha256_of", "CheckpointError"]

FORMAT = "hintlearn-checkpoint-1"


class CheckpointError(RuntimeError):
    """A checkpoint is corrupt, has the wrong hash, or does not fit the model."""


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(model: nn.Module, path: str | Path, arch: str, meta: dict | None = None,
                    dtype: torch.dtype | None = None) -> str:
    """Write ``model``'s weights to ``path`` (atomically) and return the file's sha256.

    ``dtype=torch.float16`` stores floating-point tensors at half the size; loading
    casts them back to the model's dtype.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    atomic_save({"format": FORMAT, "arch": arch, "state_dict": state, "meta": meta or {}}, path)
    return sha256_of(path)


def _read(path: Path, sha256: str | None) -> dict:
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    if sha256 is not None:
        actual = sha256_of(path)
        if actual != sha256:
            raise CheckpointError(
                f"checkpoint {path} has sha256 {actual} but {sha256} was expected: the file "
                f"is corrupt or is another checkpoint. Delete it and download or retrain it.")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: say so, do not guess
        raise CheckpointError(f"cannot read checkpoint {path}: {error}. The file is corrupt "
                              f"or not a checkpoint; delete it and retrain or re-download.") from error
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} file (saved by save_checkpoint).")
    return blob


def load_checkpoint(model: nn.Module, path: str | Path, sha256: str | None = None) -> dict:
    """Copy the weights in ``path`` into ``model``; return the checkpoint's ``meta``.

    Nothing is copied unless every name and shape matches, so a failed load leaves the
    model untouched.
    """
    path = Path(path)
    blob = _read(path, sha256)
    saved, own = blob["state_dict"], model.state_dict()
    missing = sorted(set(own) - set(saved))
    unexpected = sorted(set(saved) - set(own))
    wrong = [f"{k}: file {tuple(saved[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in saved and saved[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"checkpoint {path} (architecture {blob['arch']!r}) does not fit "
            f"{type(model).__name__}: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}, "
            f"shape mismatches {wrong[:5]}. Build the model the checkpoint was saved from.")
    model.load_state_dict(saved, strict=True)
    return dict(blob["meta"], arch=blob["arch"])
