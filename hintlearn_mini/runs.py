"""Train once, reuse everywhere: a cache of finished training runs.

Chapters compare their method with the same baselines (the student alone, KD) on the
same data and seeds. On a CPU those baselines cost minutes, so a finished run is stored
in ``$HINTLEARN_CACHE/runs/`` and a later chapter that asks for exactly the same run
reads it back instead of training it again.

"Exactly the same" is decided by a key over everything that determines the numbers:
the module's full ``repr`` (architecture and the method's hyper-parameters, which every
``Distiller`` prints), the teacher's weights, the seed, the profile, the sizes of the data, and a fingerprint of
the package's source code and shipped weights, so any change to the code trains again.
Training is deterministic on a CPU, so a cached run is the run you would get.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from torch import nn

from .checkpoints import load_checkpoint, save_checkpoint
from .data import ImageSet, cache_dir
from .profiles import Profile, fit_kwargs
from .train import History, fit, seed_everything

__all__ = ["cached_fit", "source_fingerprint"]

_PACKAGE = Path(__file__).parent


def source_fingerprint() -> str:
    """sha256 over the package's source files and its shipped teacher manifest."""
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE.rglob("*.py")) + sorted((_PACKAGE / "weights").glob("*.json")):
        digest.update(str(path.relative_to(_PACKAGE)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _weights_fingerprint(model: nn.Module | None) -> str | None:
    if model is None:
        return None
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _key(module: nn.Module, seed: int, profile: Profile, train_set: ImageSet, test_set: ImageSet) -> str:
    blob = json.dumps({
        "module": repr(module), "seed": seed, "profile": dataclasses.asdict(profile),
        "teacher": _weights_fingerprint(getattr(module, "teacher", None)),
        "train": [len(train_set), train_set.name], "test": [len(test_set), test_set.name],
        "source": source_fingerprint(),
    }, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def cached_fit(make_module, train_set: ImageSet, test_set: ImageSet, *, seed: int, profile: Profile,
               desc: str = "") -> tuple[nn.Module, History]:
    """``fit`` with the profile's settings, or the stored result of the identical run.

    ``make_module()`` builds the model or distiller; it is called right after
    ``seed_everything(seed)``, so its initial weights depend on the seed only.
    Returns the trained module (from the cache: with its trained weights loaded) and
    its history, whose ``cached`` is True when it was read from the cache.
    """
    seed_everything(seed)
    module = make_module()
    path = cache_dir() / "runs" / _key(module, seed, profile, train_set, test_set)
    record, weights = path.with_suffix(".json"), path.with_suffix(".pt")
    if record.is_file() and weights.is_file():
        stored = json.loads(record.read_text())
        load_checkpoint(module, weights, sha256=stored["sha256"])
        print(f"{desc or type(module).__name__}: read from the run cache ({path.name}), "
              f"trained earlier in {sum(r['seconds'] for r in stored['epochs']):.0f} s")
        return module, History(seed=stored["seed"], epochs=stored["epochs"], cached=True)
    history = fit(module, train_set, test_set, seed=seed, desc=desc or None, **fit_kwargs(profile))
    sha = save_checkpoint(module, weights, type(module).__name__)
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps({"seed": history.seed, "epochs": history.epochs, "desc": desc, "sha256": sha}))
    tmp.replace(record)  # written last: a record always has its weights
    return module, history
