"""A Chromium for the browser checks (``tools/pages.py``, ``tests/test_browser.py``).

    python tools/chromium.py         # `make test` runs it first: finds one, or installs one

Which Chromium the checks drive (:func:`chromium_path`): ``$HINTLEARN_CHROMIUM`` (a
path, or ``playwright`` for Playwright's own download), else a ``chromium`` on the PATH
(Debian's ``/usr/bin/chromium``), else Playwright's own.

When none of these is there, :func:`ensure` installs one, in this order:

1. Playwright's own (``playwright install chromium``), where its download works;
2. Debian's ``chromium`` through ``apt-get``, where the user is root and apt-get exists
   (machines whose network lets apt through but not Playwright's download);
3. else it stops with an error that says how to get one.

Nothing is installed when ``$HINTLEARN_CHROMIUM`` names a path: that path is the one
the checks use, and a missing one is an error. With ``HINTLEARN_CHROMIUM=playwright``
only Playwright's own is tried. The commands (``playwright``, ``id``, ``apt-get``) are
looked up on the PATH, ``playwright`` also beside this Python (the virtual environment's).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu"]
NO_CHROMIUM = "no Chromium to check the pages with"
HOW_TO_GET_ONE = (
    "Install Debian's (`apt-get install chromium`, which `make test` does as root), or "
    "Playwright's own (`.venv/bin/playwright install chromium`), or point HINTLEARN_CHROMIUM at one.")
INSTALL_TIMEOUT_S = 900


def chromium_path() -> str | None:
    """Which Chromium to drive: ``$HINTLEARN_CHROMIUM``, the PATH's (Debian's), or
    Playwright's own (None)."""
    chosen = os.environ.get("HINTLEARN_CHROMIUM", "")
    if chosen == "playwright":  # Playwright's own download (`playwright install chromium`)
        return None
    if chosen:
        return chosen
    return shutil.which("chromium")


def launch(playwright):
    """The headless Chromium of :func:`chromium_path`, started by ``playwright``
    (``sync_playwright()``'s object); raises Playwright's error when it cannot start."""
    return playwright.chromium.launch(executable_path=chromium_path(), args=LAUNCH_ARGS)


def playwright_chromium_starts() -> str:
    """"" when Playwright's own Chromium starts, else the first line of why not."""
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            playwright.chromium.launch(args=LAUNCH_ARGS).close()
    except Exception as error:  # playwright's Error: "Executable doesn't exist at ..."
        return str(error).strip().splitlines()[0][:200] or type(error).__name__
    return ""


def found() -> str | None:
    """A sentence naming the Chromium the checks will drive, or None when there is none."""
    path = chromium_path()
    if path is not None:
        return f"Chromium at {path}" if Path(path).is_file() else None
    return None if playwright_chromium_starts() else "Playwright's own Chromium"


def _run(argv: list[str], quiet: bool = False, **environment: str) -> bool:
    print("+ " + " ".join(argv), flush=True)
    try:
        done = subprocess.run(argv, env={**os.environ, **environment}, timeout=INSTALL_TIMEOUT_S,
                              stdout=subprocess.DEVNULL if quiet else None)
    except (OSError, subprocess.TimeoutExpired) as error:
        print(f"  {error}", file=sys.stderr)
        return False
    return done.returncode == 0


def _playwright() -> str:
    beside_python = Path(sys.executable).parent / "playwright"
    return shutil.which("playwright") or str(beside_python)


def _root() -> bool:
    """Whether ``id -u`` says 0 (asked of the command, as a shell script would)."""
    try:
        uid = subprocess.run(["id", "-u"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return uid.returncode == 0 and uid.stdout.strip() == "0"


def ensure() -> str:
    """The Chromium the checks will drive (a sentence), installed first when there is
    none; raises ``RuntimeError`` saying what was tried when none can be had."""
    chosen = os.environ.get("HINTLEARN_CHROMIUM", "")
    have = found()
    if have:
        return have
    if chosen not in ("", "playwright"):
        raise RuntimeError(f"{NO_CHROMIUM}: HINTLEARN_CHROMIUM={chosen} is not a file. Point it at "
                           "a Chromium, or unset it to let `make test` find or install one.")
    if _run([_playwright(), "install", "chromium"]):
        return "Playwright's own Chromium, just installed"
    tried = ["`playwright install chromium` failed (its download may be blocked here)"]
    if chosen == "playwright":
        raise RuntimeError(f"{NO_CHROMIUM} (HINTLEARN_CHROMIUM=playwright): {tried[0]}. Unset "
                           "HINTLEARN_CHROMIUM to let `make test` install Debian's as root.")
    if not _root():
        tried.append("apt-get needs root")
    elif not shutil.which("apt-get"):
        tried.append("no apt-get on this machine")
    elif not (_run(["apt-get", "update", "-qq"])
              and _run(["apt-get", "install", "-y", "-qq", "chromium"], quiet=True,
                       DEBIAN_FRONTEND="noninteractive")):
        tried.append("`apt-get install chromium` failed")
    else:
        have = found()
        if have:
            return f"{have}, just installed by apt-get"
        tried.append("`apt-get install chromium` put no chromium on the PATH")
    raise RuntimeError(f"{NO_CHROMIUM}: {'; '.join(tried)}. {HOW_TO_GET_ONE}")


def main() -> None:
    try:
        print(f"the browser checks drive {ensure()}")
    except RuntimeError as error:
        sys.exit(f"{error}\nTo run the other tests meanwhile: "
                 "HINTLEARN_PROFILE=quick .venv/bin/python -m pytest --ignore=tests/test_browser.py")


if __name__ == "__main__":
    main()
