"""Views that depend on (seed, epoch, row) only, and the store of the teacher's logits."""
import dataclasses

import pytest
import torch

from conftest import random_images
from hintlearn_mini.data import cache_dir
from hintlearn_mini.views import batches, epoch_views
from hintlearn_mini.methods import KD
from hintlearn_mini.models import build_model
from hintlearn_mini.teacher_outputs import TeacherLogits
from hintlearn_mini.train import fit, seed_everything


def _views_by_row(data, seed, epoch, batch_size):
    """Each row's augmented image as batches() shows it."""
    seen = {}
    for x, _, index in batches(data, batch_size, train=True, seed=seed, epoch=epoch):
        for row, image in zip(index.tolist(), x):
            seen[row] = image
    return seen


def test_a_view_depends_on_seed_epoch_and_row_not_on_the_batch_order():
    data = random_images(40)
    small, large = _views_by_row(data, 3, 2, 8), _views_by_row(data, 3, 2, 40)  # other batch splits
    assert all(torch.equal(small[i], large[i]) for i in range(40))
    other_seed, other_epoch = _views_by_row(data, 4, 2, 8), _views_by_row(data, 3, 5, 8)
    assert sum(not torch.equal(small[i], other_seed[i]) for i in range(40)) > 20
    assert sum(not torch.equal(small[i], other_epoch[i]) for i in range(40)) > 20
    order = [i.tolist() for *_, i in batches(data, 8, train=True, seed=3, epoch=2)]
    assert order != [i.tolist() for *_, i in batches(data, 8, train=True, seed=4, epoch=2)]


def test_epoch_views_draw_several_crops_and_both_flips():
    views = epoch_views(200, seed=0, epoch=1)
    assert len(set(zip(views.dy.tolist(), views.dx.tolist()))) > 20
    assert 0 < int(views.flip.sum()) < 200
    assert views.dy.min() >= 0 and views.dy.max() <= 8


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])  # each normalised with its own statistics
def test_stored_logits_are_the_teachers_outputs_for_the_batches_views(name):
    data = dataclasses.replace(random_images(40), name=name)
    torch.manual_seed(0)
    teacher = build_model("resnet8").eval()
    store = TeacherLogits(teacher, data, seed=5, precision="fp32", batch_size=16)
    logits = store.epoch(3)
    assert logits.shape == (40, 10) and logits.dtype == torch.float32
    with torch.no_grad():
        for x, _, index in batches(data, 8, train=True, seed=5, epoch=3):
            torch.testing.assert_close(logits[index], teacher(x), atol=1e-4, rtol=1e-4)


def test_the_store_is_computed_once_and_read_back_by_later_runs(capsys):
    data = random_images(32)
    teacher = build_model("resnet8").eval()
    first = TeacherLogits(teacher, data, seed=0, precision="fp32")
    a = first.epoch(1)
    again = TeacherLogits(teacher, data, seed=0, precision="fp32")
    assert torch.equal(again.epoch(1), a)
    assert (first.computed, first.read, again.computed, again.read) == (1, 0, 0, 1)
    for other in (TeacherLogits(teacher, data, seed=1), TeacherLogits(teacher, data, 0, "bf16"),
                  TeacherLogits(teacher, random_images(32, seed=9), seed=0),
                  TeacherLogits(build_model("resnet8"), data, seed=0)):
        assert other.key != first.key
    first.path(1).write_bytes(b"cut short")  # a killed write or a full disk
    fresh = TeacherLogits(teacher, data, seed=0, precision="fp32")
    assert torch.equal(fresh.epoch(1), a) and fresh.computed == 1
    assert "unusable" in capsys.readouterr().out


def _kd_run(store: bool, seed=0):
    data = random_images(48)
    torch.manual_seed(100)
    teacher = build_model("resnet8")
    seed_everything(seed)
    distiller = KD(build_model("resnet8"), teacher)
    history = fit(distiller, data, data, epochs=2, batch_size=16, seed=seed, precision="fp32",
                  store_teacher_logits=store, progress=False)
    return distiller, history


def test_kd_from_the_store_trains_as_kd_with_the_teacher_in_the_loop():
    folder = cache_dir() / "teacher-logits"
    looped, a = _kd_run(store=False)
    assert not folder.exists()
    stored, b = _kd_run(store=True)
    assert len(list(folder.glob("*-epoch*.pt"))) == 2  # the run did read its logits from the store
    assert looped.stored_teacher_logits is None and stored.stored_teacher_logits is None
    for row_a, row_b in zip(a.epochs, b.epochs):
        assert abs(row_a["kd"] - row_b["kd"]) < 1e-3 * max(1.0, row_a["kd"])
    for x, y in zip(looped.student.parameters(), stored.student.parameters()):
        torch.testing.assert_close(x, y, atol=1e-3, rtol=1e-3)
    _, c = _kd_run(store=True)  # read back from disk now: bit-identical
    assert [r["loss"] for r in c.epochs] == [r["loss"] for r in b.epochs]


def test_kd_really_reads_the_stored_logits():
    data = random_images(48)
    torch.manual_seed(100)
    teacher = build_model("resnet8")
    store = TeacherLogits(teacher, data, seed=0, precision="fp32")
    store.folder.mkdir(parents=True)
    for epoch in (1, 2):  # other numbers under the store's names: a run that reads them differs
        torch.save(3.0 * store.compute(epoch), store.path(epoch))
    _, looped = _kd_run(store=False)
    _, stored = _kd_run(store=True)
    assert abs(looped.epochs[0]["kd"] - stored.epochs[0]["kd"]) > 1e-3


def test_the_store_key_holds_everything_that_makes_a_view_and_its_logits(monkeypatch):
    from hintlearn_mini import teacher_outputs

    data = random_images(16)
    torch.manual_seed(0)
    teacher, other_teacher = build_model("resnet8"), build_model("resnet8")
    key = TeacherLogits(teacher, data, seed=0).key
    assert TeacherLogits(teacher, data, seed=0).key == key
    others = [TeacherLogits(other_teacher, data, seed=0), TeacherLogits(teacher, random_images(16, seed=1), seed=0),
              TeacherLogits(teacher, data, seed=1), TeacherLogits(teacher, data, seed=0, precision="bf16")]
    monkeypatch.setattr(teacher_outputs, "VIEW_RECIPE", teacher_outputs.VIEW_RECIPE + ", other crops")
    others.append(TeacherLogits(teacher, data, seed=0))  # another augmentation recipe
    assert len({key, *(store.key for store in others)}) == 1 + len(others)


def test_a_stored_file_with_other_rows_is_refused_and_recomputed(capsys):
    data = random_images(16)
    torch.manual_seed(0)
    teacher = build_model("resnet8")
    store = TeacherLogits(teacher, data, seed=0)
    right = store.epoch(1)
    store.path(1).parent.mkdir(parents=True, exist_ok=True)
    torch.save(right[:-1], store.path(1))  # one row short: another data set's file
    again = TeacherLogits(teacher, data, seed=0)
    assert torch.equal(again.epoch(1), right) and again.computed == 1 and again.read == 0
    assert "holds 15 rows for 16 images" in capsys.readouterr().out
    assert torch.load(store.path(1), weights_only=True).shape[0] == 16  # replaced on disk


def test_the_teachers_logits_are_computed_in_the_precision_the_key_says():
    data = random_images(8)
    torch.manual_seed(0)
    teacher = build_model("resnet8")
    seen = []
    forward = teacher.forward
    teacher.forward = lambda x, **kw: seen.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu")
                                                  else None) or forward(x, **kw)
    TeacherLogits(teacher, data, seed=0, precision="bf16").compute(1)
    TeacherLogits(teacher, data, seed=0, precision="fp32").compute(1)
    assert seen == [torch.bfloat16, None]
