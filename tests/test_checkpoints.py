import pytest
import torch

from hintlearn_mini.checkpoints import CheckpointError, load_checkpoint, save_checkpoint, sha256_of
from hintlearn_mini.models import build_model


def test_round_trip_with_hash(tmp_path):
    torch.manual_seed(0)
    model = build_model("resnet8")
    sha = save_checkpoint(model, tmp_path / "m.pt", "resnet8", {"note": "x"})
    assert sha == sha256_of(tmp_path / "m.pt")
    other = build_model("resnet8")
    meta = load_checkpoint(other, tmp_path / "m.pt", sha256=sha)
    assert meta == {"note": "x", "arch": "resnet8"}
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)


def test_wrong_hash_is_refused(tmp_path):
    save_checkpoint(build_model("resnet8"), tmp_path / "m.pt", "resnet8")
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(build_model("resnet8"), tmp_path / "m.pt", sha256="0" * 64)


def test_truncated_file_gives_a_clear_error(tmp_path):
    save_checkpoint(build_model("resnet8"), tmp_path / "m.pt", "resnet8")
    data = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "m.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(build_model("resnet8"), tmp_path / "m.pt")


def test_mismatched_model_is_never_half_loaded(tmp_path):
    save_checkpoint(build_model("resnet8"), tmp_path / "m.pt", "resnet8")
    torch.manual_seed(1)
    target = build_model("resnet14")
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(CheckpointError, match="does not fit") as error:
        load_checkpoint(target, tmp_path / "m.pt")
    assert "missing" in str(error.value)
    for key, value in target.state_dict().items():
        assert torch.equal(value, before[key])
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_checkpoint(build_model("resnet8", num_classes=100), tmp_path / "m.pt")


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(build_model("resnet8"), tmp_path / "none.pt")
