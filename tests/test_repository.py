"""One repository URL (tools/repository.py): _config.yml's, followed everywhere."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import repository  # noqa: E402  (tools/ is not a package)


def test_every_file_names_the_repository_of_config_yml():
    problems = repository.disagreements()
    assert not problems, ("these files name another repository than _config.yml's repository.url; "
                          "run `python tools/repository.py set OWNER/NAME`:\n  " + "\n  ".join(problems))
    assert len(repository.followers()) >= 12  # nine chapters, instructor notes, two configs


def _copy_of_the_tree(tmp_path, monkeypatch) -> Path:
    for path in [repository.CONFIG, *repository.followers()]:
        target = tmp_path / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    monkeypatch.setattr(repository, "ROOT", tmp_path)
    monkeypatch.setattr(repository, "CONFIG", tmp_path / "_config.yml")
    return tmp_path


def test_set_points_everything_at_a_fork_and_a_straggler_is_caught(tmp_path, monkeypatch):
    root = _copy_of_the_tree(tmp_path, monkeypatch)
    old = repository.configured_url()
    assert repository.set_repository("a-fork/its-book") == "https://github.com/a-fork/its-book"
    assert repository.configured_url() == "https://github.com/a-fork/its-book"
    assert repository.disagreements() == []
    chapter = root / "book" / "03_fitnets.ipynb"
    assert "git+https://github.com/a-fork/its-book" in chapter.read_text()
    chapter.write_text(chapter.read_text().replace("a-fork/its-book", "someone/else"))
    assert repository.disagreements() == [
        "book/03_fitnets.ipynb: https://github.com/someone/else (expected https://github.com/a-fork/its-book)"]
    assert old != repository.configured_url()
