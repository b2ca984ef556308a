"""Execute the book's chapters the one way their outputs are stored, and find stale ones.

    python tools/chapters.py execute book/03_fitnets.ipynb [...]   # or: make chapter NB=...
    python tools/chapters.py stale                                  # or: make stale-chapters

``execute`` runs each notebook top to bottom in a fresh kernel, in the ``laptop``
profile (the profile of the stored outputs), from its own folder, and writes it back
with its outputs and a record in its metadata (``metadata.hintlearn``): the profile,
the precision, a fingerprint of its code cells, a fingerprint of the package, the date
and the seconds it took. ``tests/test_stored_notebooks.py`` fails when a chapter's code
changed after its stored run or when it was stored from another profile; ``stale``
lists the chapters whose stored run predates the current package (they may still be
right: re-execute them to be sure).
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
STORED_PROFILE = "laptop"


def code_fingerprint(nb) -> str:
    """sha256 over the sources of a notebook's code cells, in order."""
    digest = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
            digest.update(source.encode())
            digest.update(b"\0")
    return digest.hexdigest()


def profile_settings() -> dict:
    """The stored profile's values that set what a chapter computes, as the package
    defines them now (device and precision, which depend on the machine, left out, and
    sync_batchnorm, which acts only on several GPUs: a chapter is one process)."""
    import dataclasses

    sys.path.insert(0, str(ROOT))
    from hintlearn_mini.profiles import PROFILES

    settings = dataclasses.asdict(PROFILES[STORED_PROFILE])
    for machine in ("device", "precision", "sync_batchnorm"):
        settings.pop(machine)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}


def package_fingerprint() -> str:
    sys.path.insert(0, str(ROOT))
    from hintlearn_mini.runs import source_fingerprint

    return source_fingerprint()


def execute(path: Path, timeout: int = 900) -> float:
    """Run ``path`` in a fresh kernel in the stored profile; store outputs and record."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    os.environ["HINTLEARN_PROFILE"] = STORED_PROFILE  # the kernel inherits the environment
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    sys.path.insert(0, str(ROOT))
    from hintlearn_mini.profiles import get_profile

    nb.metadata["hintlearn"] = {
        "profile": STORED_PROFILE, "profile_settings": profile_settings(), "precision": get_profile(STORED_PROFILE).resolved_precision(),
        "code_sha256": code_fingerprint(nb), "package_sha256": package_fingerprint(),
        "executed": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(seconds),
    }
    nbformat.write(nb, path)
    return seconds


def chapters() -> list[Path]:
    return sorted(p for p in BOOK.glob("*.ipynb"))


def stale() -> list[tuple[Path, str]]:
    """(chapter, why) for every chapter whose stored run is not of the current code."""
    current = package_fingerprint()
    found = []
    for path in chapters():
        nb = nbformat.read(path, as_version=4)
        record = nb.metadata.get("hintlearn")
        if record is None:
            found.append((path, "no record of its stored run (never executed with this tool)"))
        elif record.get("profile_settings") != profile_settings():
            found.append((path, f"stored with other {STORED_PROFILE} settings than the package's"))
        elif record.get("code_sha256") != code_fingerprint(nb):
            found.append((path, "its code cells changed after the stored run"))
        elif record.get("package_sha256") != current:
            found.append((path, f"stored on {record.get('executed')}, before the current package"))
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("execute", help="execute chapters and store their outputs")
    run.add_argument("notebooks", nargs="+", type=Path)
    sub.add_parser("stale", help="list chapters whose stored run predates the current code")
    args = parser.parse_args(argv)
    if args.command == "execute":
        for path in args.notebooks:
            print(f"executing {path} in the {STORED_PROFILE} profile ...", flush=True)
            print(f"  {path}: {execute(path.resolve()):.0f} s", flush=True)
        return 0
    found = stale()
    for path, why in found:
        print(f"{path.relative_to(ROOT)}: {why}")
    if not found:
        print("every chapter's stored run is of the current package and code")
    return 0


if __name__ == "__main__":
    sys.exit(main())
