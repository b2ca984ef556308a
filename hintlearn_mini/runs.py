"""Train once, reuse everywhere: a cache of finished training runs.

Chapters compare their method with the same baselines (the student alone, KD) on the
same data and seeds. On a CPU those baselines cost minutes, so a finished run is stored
in ``$HINTLEARN_CACHE/runs/`` and a later chapter that asks for exactly the same run
reads it back instead of training it again.

"Exactly the same" is decided by a key over everything that determines the numbers:
the module's full ``repr`` (its architecture), the arguments a ``Distiller`` was built
with (recorded once by the base class, ``Distiller.arguments``: every keyword of every
method, tensors by their content), the number of CPU threads (the same seed gives other
digits at one and at two threads) and of processes training it together
(``torch.distributed``), its initial weights, the teacher's weights, the seed, the profile
with the precision it resolves to on this machine, the content of the training and test
data (``ImageSet.fingerprint``), and a fingerprint of the package's training code
(``TRAINING_SOURCES``) and shipped weights, so any change to what a run computes trains
again. Of the methods' files only those that define the run's own modules count
(``run_sources``): editing ReviewKD retrains the ReviewKD runs, not the student alone or
KD, while an edit to the shared code (losses, training loop, views, ``methods/base.py``)
retrains everything. Loading code is not fingerprinted where what it loads is: the
images by their content, the teacher by its weights. Code that only reads or shows results (the benchmark's bookkeeping, plots,
statistics, exercises) is not in the fingerprint: editing a figure does not retrain the
book. The profile's list of seeds and pairs are not in the key either: they say which
runs an experiment makes, not what one run computes. The table of profiles is data, not
code: a run's key holds its own profile's values, so changing the ``laptop`` entry to
values a benchmark already trained with finds that benchmark's runs. Training is deterministic on a
CPU, so a cached run is the run you would get.

The benchmark (``hintlearn_mini.bench``) stores its one-stage runs here too, so a
chapter that asks for a benchmark run reads it back.
"""
from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from .checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from .data import ImageSet, cache_dir
from .distributed import is_writer, process_zero_says, processes
from .profiles import Profile, fit_kwargs
from .teacher_outputs import weights_fingerprint
from .train import History, fit, seed_everything

__all__ = ["cached_fit", "run_key", "source_fingerprint", "run_sources", "TRAINING_SOURCES", "cache_savings"]

_PACKAGE = Path(__file__).parent
_READ_BACK: list[float] = []  # training seconds of every run this process read from the cache


def cache_savings() -> tuple[int, float]:
    """How many runs this process read from the cache, and the seconds they had trained."""
    return len(_READ_BACK), sum(_READ_BACK)


# The modules whose code decides what a training run computes (relative to the package).
TRAINING_SOURCES = ("distributed.py", "hardware.py", "losses.py", "methods", "models.py", "profiles.py",
                    "teacher_outputs.py", "train.py", "views.py", "your_own_models.py")
# Of these, a run counts the files of its own classes only (a method, the tapping of
# your own models), besides the shared ones: see run_sources.
PER_RUN_SOURCES = ("methods", "your_own_models.py")
# Tables of values in those files whose entries a run's key holds by value: the
# profiles (the run's profile is in the key, field by field).
DATA_TABLES = {"profiles.py": "PROFILES"}
# Not fingerprinted, because what they produce is fingerprinted itself: data.py loads
# and selects images (their content is in the key, ImageSet.fingerprint), zoo.py and
# checkpoints.py load and store weights (the teacher's and the initial weights are in
# the key), runs.py is this cache. Editing them never retrains the book.


def run_sources(module: nn.Module) -> tuple[str, ...]:
    """The training code a run of ``module`` depends on: ``TRAINING_SOURCES`` with, of
    ``PER_RUN_SOURCES``, only ``methods/``'s shared files and the files defining
    ``module``'s own classes (the distiller, its regressors, embeddings or fusion
    modules, a ``TappedModel``)."""
    own = {"methods/__init__.py", "methods/base.py"}
    for part in module.modules():
        path = type(part).__module__.removeprefix(f"{__package__}.").replace(".", "/") + ".py"
        if any(path == source or path.startswith(f"{source}/") for source in PER_RUN_SOURCES):
            own.add(path)
    shared = tuple(name for name in TRAINING_SOURCES if name not in PER_RUN_SOURCES)
    return shared + tuple(sorted(own))


def source_fingerprint(sources=TRAINING_SOURCES) -> str:
    """sha256 over the package's training code (``sources``, default all of
    ``TRAINING_SOURCES``; folders count every ``.py`` file in them) and its shipped
    teacher manifests."""
    files = []
    for name in sources:
        path = _PACKAGE / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(_PACKAGE)).encode())
        digest.update(_code_of(path).encode())
    for path in sorted((_PACKAGE / "weights").glob("*.json")):
        digest.update(str(path.relative_to(_PACKAGE)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _code_of(path: Path) -> str:
    """The text of a source file without its data tables (``DATA_TABLES``): a table's
    entries are in the key by value (the run's own profile), so editing one profile
    does not retrain the runs of the others."""
    text = path.read_text()
    table = DATA_TABLES.get(path.relative_to(_PACKAGE).as_posix())
    if table is None:
        return text
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [table]:
            return text.replace(ast.get_source_segment(text, node), f"{table} = ...")
    raise ValueError(f"{path} has no table {table} = ...; update runs.DATA_TABLES")


def run_key(module: nn.Module, seed: int, profile: Profile, train_set: ImageSet, test_set: ImageSet,
            validation_set: ImageSet | None = None) -> str:
    """The run cache's key of training ``module`` (as built, untrained) with this seed,
    profile and data: 20 hex digits of a sha256 over everything that sets the numbers
    (and the validation set the run is evaluated on, when it has one)."""
    # "auto" is whatever it resolves to here: an auto run on this CPU is the bf16 run
    settings = dict(dataclasses.asdict(profile), precision=profile.resolved_precision())
    for plan in ("seeds", "pairs"):  # which runs an experiment makes, not what one computes
        settings.pop(plan)
    blob = json.dumps({
        "module": repr(module), "arguments": _plain(getattr(module, "arguments", {})),
        "threads": torch.get_num_threads(), "seed": seed, "profile": settings,
        "initial_weights": weights_fingerprint(module),  # the student's, adapters' and teacher's
        "train": train_set.fingerprint(), "test": test_set.fingerprint(),
        "source": source_fingerprint(run_sources(module)),
        **({"validation": validation_set.fingerprint()} if validation_set is not None else {}),
        # several processes under torch.distributed: BatchNorm sees each one's share
        **({"processes": processes()[1]} if processes()[1] > 1 else {}),
    }, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _plain(value):
    """A method's argument as JSON the key can hash: numbers, strings and None as they
    are, sequences and dicts element by element, a tensor by its dtype, shape and a
    sha256 of its values. Anything else is an error: a key must never guess."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Tensor):
        data = value.detach().cpu().contiguous()
        return {"dtype": str(data.dtype), "shape": list(data.shape),
                "sha256": hashlib.sha256(data.numpy().tobytes()).hexdigest()}
    raise TypeError(f"run_key: cannot key on an argument of type {type(value).__name__} ({value!r}); "
                    f"give the method numbers, strings, sequences or tensors, or teach runs._plain "
                    f"this type")


def cached_fit(make_module, train_set: ImageSet, test_set: ImageSet, *, seed: int, profile: Profile,
               desc: str = "", progress: bool = True, validation_set: ImageSet | None = None
               ) -> tuple[nn.Module, History]:
    """``fit`` with the profile's settings, or the stored result of the identical run.

    ``make_module()`` builds the model or distiller; it is called right after
    ``seed_everything(seed)``, so its initial weights depend on the seed only.
    Returns the trained module (from the cache: with its trained weights loaded) and
    its history, whose ``cached`` is True when it was read from the cache.
    """
    seed_everything(seed)
    module = make_module()
    path = cache_dir() / "runs" / run_key(module, seed, profile, train_set, test_set, validation_set)
    record, weights = path.with_suffix(".json"), path.with_suffix(".pt")
    stored = _read_back(module, record, weights, desc) if is_writer() else None
    # under torch.distributed, process 0 (the one that writes the cache) decides for all
    if process_zero_says(stored is not None):
        if stored is None:  # another process: process 0 read it, so can this one
            stored = json.loads(record.read_text())
            load_checkpoint(module, weights, sha256=stored["sha256"])
        trained = sum(r["seconds"] for r in stored["epochs"])
        _READ_BACK.append(trained)
        if is_writer():
            print(f"{desc or type(module).__name__}: read from the run cache ({path.name}), "
                  f"trained earlier in {trained:.0f} s")
        return module, History(seed=stored["seed"], epochs=stored["epochs"], cached=True,
                               precision=stored.get("precision", "fp32"))
    seed_everything(seed)
    module = make_module()  # a failed read may have left weights in it: start clean
    history = fit(module, train_set, test_set, seed=seed, desc=desc or None, progress=progress,
                  validation_set=validation_set, **fit_kwargs(profile))
    if is_writer():  # one process writes the cache
        sha = save_checkpoint(module, weights, type(module).__name__)
        tmp = record.with_name(f".{record.name}.{os.getpid()}.tmp")  # this process's own
        tmp.write_text(json.dumps({"seed": history.seed, "epochs": history.epochs, "desc": desc,
                                   "sha256": sha, "precision": history.precision}))
        tmp.replace(record)  # written last: a record always has its weights
    return module, history


def _read_back(module: nn.Module, record: Path, weights: Path, desc: str) -> dict | None:
    """The stored record of this run, with its trained weights loaded into ``module``;
    None when there is none, or when it is unusable (then both files are deleted)."""
    if not (record.is_file() and weights.is_file()):
        return None
    try:
        stored = json.loads(record.read_text())
        load_checkpoint(module, weights, sha256=stored["sha256"])
        return stored
    except (ValueError, KeyError, CheckpointError) as error:  # cut, corrupt or mismatched
        print(f"{desc or type(module).__name__}: the run cache's {record} (or its weights) is "
              f"unusable ({type(error).__name__}: {str(error)[:120]}); deleting both and training again")
        record.unlink(missing_ok=True)
        weights.unlink(missing_ok=True)
        return None
