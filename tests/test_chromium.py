"""`make test` gets the browser checks a Chromium itself (tools/chromium.py), offline here.

The helper runs with a PATH of fake `playwright`, `id` and `apt-get` commands that record
their calls and succeed or fail as a case asks, and with Playwright's browser folder
empty: Playwright's download comes first, apt-get only as root after it failed, a clear
error when both fail, and nothing is installed when a Chromium is already there.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NO_CHROMIUM = "no Chromium to check the pages with"
PLAYWRIGHT = "playwright install chromium"
APT = ["apt-get update -qq", "apt-get install -y -qq chromium (DEBIAN_FRONTEND=noninteractive)"]

# Each fake logs its arguments and exits with $FAKE_<NAME>_RC; apt-get's install also
# puts a `chromium` on the PATH, as Debian's package does.
FAKES = {
    "playwright": 'echo "playwright $*" >> "$FAKE_LOG"; exit "${FAKE_PLAYWRIGHT_RC:-0}"',
    "id": 'echo "id $*" >> "$FAKE_LOG"; echo "$FAKE_UID"',
    "apt-get": ('echo "apt-get $* ${DEBIAN_FRONTEND:+(DEBIAN_FRONTEND=$DEBIAN_FRONTEND)}" >> "$FAKE_LOG"\n'
                '[ "${FAKE_APT_RC:-0}" = 0 ] && [ "$1" = install ] && : > "$FAKE_BIN/chromium" '
                '&& /bin/chmod +x "$FAKE_BIN/chromium"\nexit "${FAKE_APT_RC:-0}"'),
}


def install_chromium(tmp_path: Path, commands=tuple(FAKES), chromium=False, **env: str):
    """Run tools/chromium.py with only the fake ``commands`` on the PATH (and a fake
    ``chromium`` when asked); returns (exit status, output, the fakes' calls)."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for name in list(commands) + (["chromium"] if chromium else []):
        (bin_dir / name).write_text("#!/bin/sh\n" + FAKES.get(name, "exit 0") + "\n")
        (bin_dir / name).chmod(0o755)
    environment = {k: v for k, v in os.environ.items() if k not in ("HINTLEARN_CHROMIUM", "DEBIAN_FRONTEND")}
    environment.update(PATH=str(bin_dir), FAKE_BIN=str(bin_dir), FAKE_LOG=str(log), FAKE_UID="0",
                       PLAYWRIGHT_BROWSERS_PATH=str(tmp_path / "no-playwright-browsers"))
    environment.update(env)
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "chromium.py")], env=environment,
                          capture_output=True, text=True, timeout=120)
    calls = [line.strip() for line in log.read_text().splitlines()] if log.exists() else []
    return done.returncode, done.stdout + done.stderr, calls


def test_a_chromium_on_the_path_is_used_and_nothing_is_installed(tmp_path):
    status, output, calls = install_chromium(tmp_path, chromium=True)
    assert (status, calls) == (0, []), output
    assert f"Chromium at {tmp_path / 'bin' / 'chromium'}" in output


def test_the_chromium_hintlearn_chromium_names_is_used_and_nothing_is_installed(tmp_path):
    mine = tmp_path / "my-chromium"
    mine.write_text("")
    status, output, calls = install_chromium(tmp_path, HINTLEARN_CHROMIUM=str(mine))
    assert (status, calls) == (0, []), output
    assert f"Chromium at {mine}" in output


def test_playwrights_download_comes_first_and_apt_is_left_alone_when_it_works(tmp_path):
    status, output, calls = install_chromium(tmp_path)
    assert (status, calls) == (0, [PLAYWRIGHT]), output
    assert "Playwright's own Chromium, just installed" in output


def test_apt_installs_debians_chromium_as_root_when_playwrights_download_fails(tmp_path):
    status, output, calls = install_chromium(tmp_path, FAKE_PLAYWRIGHT_RC="1")
    assert (status, calls) == (0, [PLAYWRIGHT, "id -u", *APT]), output
    assert f"Chromium at {tmp_path / 'bin' / 'chromium'}, just installed by apt-get" in output


@pytest.mark.parametrize("case, commands, env, calls, why", [
    ("not root", FAKES, {"FAKE_UID": "1000"}, [PLAYWRIGHT, "id -u"], "apt-get needs root"),
    ("no apt-get", ("playwright", "id"), {}, [PLAYWRIGHT, "id -u"], "no apt-get on this machine"),
    ("apt fails", FAKES, {"FAKE_APT_RC": "100"}, [PLAYWRIGHT, "id -u", APT[0]], "`apt-get install chromium` failed"),
    ("playwright asked for", FAKES, {"HINTLEARN_CHROMIUM": "playwright"}, [PLAYWRIGHT], "HINTLEARN_CHROMIUM=playwright"),
])
def test_when_neither_works_it_stops_with_a_clear_error(tmp_path, case, commands, env, calls, why):
    status, output, made = install_chromium(tmp_path, commands, FAKE_PLAYWRIGHT_RC="1", **env)
    assert (status, made) == (1, calls), f"{case}:\n{output}"
    assert NO_CHROMIUM in output and why in output, f"{case}:\n{output}"


def test_a_missing_hintlearn_chromium_is_an_error_and_nothing_is_installed(tmp_path):
    status, output, calls = install_chromium(tmp_path, HINTLEARN_CHROMIUM=str(tmp_path / "none"))
    assert (status, calls) == (1, []), output
    assert f"HINTLEARN_CHROMIUM={tmp_path / 'none'} is not a file" in output


def test_make_test_gets_a_chromium_before_the_tests_run():
    dry_run = subprocess.run(["make", "-n", "-B", "-C", str(ROOT), "test"], capture_output=True, text=True,
                             timeout=60).stdout.splitlines()
    helper = [i for i, line in enumerate(dry_run) if "tools/chromium.py" in line]
    tests = [i for i, line in enumerate(dry_run) if "-m pytest" in line]
    assert len(helper) == len(tests) == 1 and helper[0] < tests[0], dry_run


def test_the_pages_drive_the_chromium_the_helper_found_or_installed(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "tools"))
    import chromium
    monkeypatch.delenv("HINTLEARN_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert chromium.chromium_path() is None, "no chromium on the PATH: Playwright's own, as installed"
    (tmp_path / "chromium").write_text("#!/bin/sh\n")
    (tmp_path / "chromium").chmod(0o755)
    assert chromium.chromium_path() == str(tmp_path / "chromium"), "Debian's, as apt-get installs it"
