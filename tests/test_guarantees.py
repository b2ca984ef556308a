"""The guarantees the book's evidence leans on, each pinned by a test that breaks with it.

Seeds reach everything random; augmentation really augments; the run cache's key
covers everything that sets the numbers; writes are atomic; every distiller's loss
terms are its pure losses with its weights; the feature terms train the student and
never the teacher; the taps are the official ones.
"""
import copy
import csv
import dataclasses
import shutil

import pytest
import torch
import torch.nn.functional as F

from conftest import random_images
from hintlearn_mini import bench, checkpoints, runs
from hintlearn_mini.data import ImageSet, cache_dir
from hintlearn_mini.views import augment, batches, contrast_indices
from hintlearn_mini.losses import at_loss, fsp_loss, hcl_loss, hint_loss, kd_loss, nce_loss
from hintlearn_mini.methods import CRD, FSP, KD, AttentionTransfer, FitNets, ReviewKD
from hintlearn_mini.methods.fsp import consecutive_pairs
from hintlearn_mini.models import build_model
from hintlearn_mini.profiles import PROFILES
from hintlearn_mini.train import fit, seed_everything

TINY = dataclasses.replace(PROFILES["quick"], epochs=1, batch_size=16, precision="fp32")


# ------------------------------------------------------------------ seeds
def test_the_fit_seed_alone_changes_the_numbers():
    seed_everything(0)
    model = build_model("resnet8")
    data = random_images(48)
    runs_by_seed = {}
    for seed in (1, 1, 2):
        trained = copy.deepcopy(model)  # the same initial weights every time
        history = fit(trained, data, data, epochs=1, batch_size=16, seed=seed, progress=False)
        runs_by_seed.setdefault(seed, []).append(history.epochs[0]["loss"])
    assert runs_by_seed[1][0] == runs_by_seed[1][1]
    assert runs_by_seed[1][0] != runs_by_seed[2][0]


def _negatives(run_seed):
    data = random_images(40)
    seed_everything(run_seed)
    crd = CRD(build_model("resnet8"), build_model("resnet8"), train_labels=data.labels, k=8)
    return contrast_indices(data.labels, torch.arange(8), 8, crd.generator)


def test_the_run_seed_reaches_crds_negatives():
    assert torch.equal(_negatives(0), _negatives(0))
    assert not torch.equal(_negatives(0), _negatives(1))


# ------------------------------------------------------------ augmentation
def test_augmentation_makes_several_crops_and_flips_of_identical_images():
    image = torch.arange(3 * 32 * 32).reshape(1, 3, 32, 32).remainder(251).to(torch.uint8)
    batch = image.expand(64, 3, 32, 32).contiguous()
    out = augment(batch, torch.Generator().manual_seed(0))
    distinct = {tuple(o.flatten().tolist()) for o in out}
    assert len(distinct) >= 2, "augmentation returned the images unchanged"
    flipped = {tuple(o.flip(2).flatten().tolist()) for o in out}
    assert distinct & flipped, "no image is the horizontal flip of another"
    data = ImageSet(batch, torch.zeros(64, dtype=torch.long), ["c"])
    x, *_ = next(batches(data, 64, train=True, seed=0, epoch=1))
    assert len({tuple(v.flatten().tolist()) for v in x}) >= 2, "batches() does not augment"


# --------------------------------------------------------- run cache key
def _key(module=None, seed=0, profile=TINY, train=None, test=None):
    train = train if train is not None else random_images(32)
    test = test if test is not None else random_images(16, seed=1)
    if module is None:
        torch.manual_seed(0)
        teacher = build_model("resnet8")
        torch.manual_seed(1)
        module = KD(build_model("resnet8"), teacher)
    return runs.run_key(module, seed, profile, train, test)


def test_every_component_of_the_run_cache_key_changes_it(tmp_path, monkeypatch):
    base = _key()
    assert _key() == base
    torch.manual_seed(0)
    teacher = build_model("resnet8")
    torch.manual_seed(1)
    other_t = KD(build_model("resnet8"), teacher, T=2.0)
    torch.manual_seed(2)
    other_init = KD(build_model("resnet8"), teacher)
    torch.manual_seed(1)
    other_teacher = KD(build_model("resnet8"), build_model("resnet8"))
    changed = {
        "hyper-parameter": _key(module=other_t),
        "initial weights": _key(module=other_init),
        "teacher weights": _key(module=other_teacher),
        "seed": _key(seed=1),
        "profile": _key(profile=dataclasses.replace(TINY, lr=0.01)),
        "precision": _key(profile=dataclasses.replace(TINY, precision="bf16")),
        "training images": _key(train=random_images(32, seed=5)),
        "test images": _key(test=random_images(16, seed=6)),
    }
    package = tmp_path / "hintlearn_mini"
    shutil.copytree(runs._PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__", "*.pt"))
    (package / "losses.py").write_text((package / "losses.py").read_text() + "\n# edited\n")
    monkeypatch.setattr(runs, "_PACKAGE", package)
    changed["package source"] = _key()
    for what, key in changed.items():
        assert key != base, f"the run cache key ignores the {what}"


# Package modules that only read or show results: editing them never changes a run.
DISPLAY_ONLY = {"__init__.py", "bench", "exercises", "lesson.py", "plots.py", "probes.py", "published.py", "stats.py",
                "tables.py"}
# Modules that load or store what the key fingerprints itself (the images' content, the
# teacher's and the initial weights), or are the cache: editing them never retrains.
LOADS_WHAT_IS_FINGERPRINTED = {"checkpoints.py", "data.py", "runs.py", "zoo.py"}


def _edit(path):
    for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
        file.write_text(file.read_text() + "\n# edited\n")


def test_every_module_is_fingerprinted_unless_it_only_shows_results(tmp_path, monkeypatch):
    modules = {p.relative_to(runs._PACKAGE).parts[0] for p in runs._PACKAGE.rglob("*.py")
               if "__pycache__" not in p.parts}
    assert modules == set(runs.TRAINING_SOURCES) | DISPLAY_ONLY | LOADS_WHAT_IS_FINGERPRINTED, (
        "a new module must be in runs.TRAINING_SOURCES (it changes what a run computes) "
        "or in DISPLAY_ONLY / LOADS_WHAT_IS_FINGERPRINTED here (it cannot change a run's numbers)")
    base = _key()
    package = tmp_path / "hintlearn_mini"
    shutil.copytree(runs._PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__", "*.pt"))
    monkeypatch.setattr(runs, "_PACKAGE", package)
    for name in sorted(DISPLAY_ONLY | LOADS_WHAT_IS_FINGERPRINTED):
        _edit(package / name)
    assert _key() == base, "editing a display-only or loading module retrains every run"
    _edit(package / "your_own_models.py")
    assert _key() == base, "editing the tapping of your own models retrains the book's own runs"
    _edit(package / "views.py")
    assert _key() != base, "editing the augmentation or batching does not retrain"
    base = _key()
    torch.manual_seed(1)
    alone = build_model("resnet8")
    with pytest.warns(UserWarning, match="negatives requested"):  # K adapts to 32 images
        crd = CRD(build_model("resnet8"), build_model("resnet8"), train_labels=torch.arange(32) % 4)
    before = {"alone": _key(alone), "crd": _key(crd)}
    (package / "methods" / "kd.py").write_text((package / "methods" / "kd.py").read_text() + "\n# edited\n")
    assert _key() != base, "editing a method does not retrain its runs"
    assert {"alone": _key(alone), "crd": _key(crd)} == before, (
        "editing KD retrains runs of the student alone or of another method")
    (package / "methods" / "crd.py").write_text((package / "methods" / "crd.py").read_text() + "\n# edited\n")
    assert _key(crd) != before["crd"], "editing CRD does not retrain its runs"
    (package / "methods" / "base.py").write_text((package / "methods" / "base.py").read_text() + "\n# edited\n")
    assert _key(alone) != before["alone"] and _key(crd) != before["crd"], (
        "editing the shared methods/base.py does not retrain every run")


def test_the_seeds_and_pairs_a_profile_plans_are_not_part_of_a_run():
    base = _key()
    assert _key(profile=dataclasses.replace(TINY, seeds=(0, 1, 2, 3, 4))) == base
    assert _key(profile=dataclasses.replace(TINY, pairs=(("resnet32", "resnet8"),))) == base
    assert _key(profile=dataclasses.replace(TINY, epochs=TINY.epochs + 1)) != base


def test_editing_the_table_of_profiles_keeps_every_run_but_editing_profile_code_does_not(
        tmp_path, monkeypatch):
    """A run's key holds its profile by value, so a changed ``laptop`` entry finds the
    runs a benchmark made with the same values; the code of profiles.py still counts."""
    base = _key()
    package = tmp_path / "hintlearn_mini"
    shutil.copytree(runs._PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__", "*.pt"))
    monkeypatch.setattr(runs, "_PACKAGE", package)
    profiles = package / "profiles.py"
    text = profiles.read_text()
    profiles.write_text(text.replace('"quick", "cifar10", "resnet32", "resnet8", 40',
                                     '"quick", "cifar10", "resnet32", "resnet8", 41'))
    assert profiles.read_text() != text
    assert _key() == base, "editing an entry of PROFILES retrains runs of other profiles"
    profiles.write_text(text.replace("epochs=profile.stage_one_epochs()",
                                     "epochs=profile.stage_one_epochs() + 1"))
    assert profiles.read_text() != text
    assert _key() != base, "editing the code of profiles.py (stage_one_kwargs) does not retrain"
    profiles.write_text(text.replace("PROFILES = {", "TABLE = {"))
    with pytest.raises(ValueError, match="DATA_TABLES"):
        _key()


# ---------------------------------------------------------- atomic writes
class Interrupted(RuntimeError):
    pass


def test_a_crash_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    model = build_model("resnet8")
    sha = checkpoints.save_checkpoint(model, path, "resnet8")
    real_save = torch.save

    def crash(obj, f, *args, **kwargs):
        real_save({"half": torch.zeros(3)}, f)  # some bytes reach the file, then the crash
        raise Interrupted

    with monkeypatch.context() as patch:
        patch.setattr(torch, "save", crash)
        with pytest.raises(Interrupted):
            checkpoints.save_checkpoint(build_model("resnet8"), path, "resnet8")
    checkpoints.load_checkpoint(build_model("resnet8"), path, sha256=sha)  # intact


def test_a_crash_while_writing_a_run_record_leaves_no_record(monkeypatch):
    data = random_images(32)
    make = lambda: build_model("resnet8")
    runs.cached_fit(make, data, data, seed=0, profile=TINY)
    before = {p.name: p.read_bytes() for p in (cache_dir() / "runs").iterdir()}
    seed_everything(1)
    record = (cache_dir() / "runs" / runs.run_key(make(), 1, TINY, data, data)).with_suffix(".json")
    real_write = type(record).write_text

    def crash(self, text, *args, **kwargs):
        real_write(self, text[: len(text) // 2])  # half the record reaches the disk
        raise Interrupted

    with monkeypatch.context() as patch:
        patch.setattr(type(record), "write_text", crash)
        with pytest.raises(Interrupted):
            runs.cached_fit(make, data, data, seed=1, profile=TINY)
    assert not record.exists(), "a half-written record stands under its final name"
    assert all((cache_dir() / "runs" / name).read_bytes() == blob for name, blob in before.items())


def test_a_crash_while_writing_the_benchmark_csv_keeps_the_previous_file(tmp_path, monkeypatch):
    out = tmp_path / "bench.csv"
    torch.manual_seed(0)
    inputs = {"teacher": build_model("resnet8").eval(), "train_set": random_images(32),
              "test_set": random_images(16, seed=1)}
    bench.run_benchmark(out, TINY, [bench.recipes.STUDENT_ALONE], [0], **inputs)
    before = out.read_text()
    def crash(self, rows):  # the header is out, the rows are not: the crash
        raise Interrupted

    monkeypatch.setattr(csv.DictWriter, "writerows", crash)
    with pytest.raises(Interrupted):
        bench.run_benchmark(out, TINY, [bench.recipes.STUDENT_ALONE], [1], **inputs)
    assert out.read_text() == before


# ------------------------------------------------- loss terms and weights
def _pair(student="resnet8", teacher="resnet14"):
    torch.manual_seed(0)
    return build_model(student), build_model(teacher)


def _batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, 3, 32, 32, generator=g), torch.tensor([0, 1, 2, 3])


def _expected_and_terms(distiller, x, y):
    distiller.train()
    logits, terms = distiller(x, y, index=torch.arange(len(y)))
    with torch.no_grad():
        t_logits, t_feats = distiller.teacher(x, features=True)
    return logits, terms, t_logits, t_feats


def test_kd_terms_are_the_weighted_pure_losses_in_student_teacher_order():
    distiller = KD(*_pair(), T=3.0, ce_weight=0.3, kd_weight=0.7)
    x, y = _batch()
    logits, terms, t_logits, _ = _expected_and_terms(distiller, x, y)
    torch.testing.assert_close(terms["ce"], 0.3 * F.cross_entropy(logits, y))
    torch.testing.assert_close(terms["kd"], 0.7 * kd_loss(logits, t_logits, 3.0))
    assert not torch.allclose(terms["kd"], 0.7 * kd_loss(t_logits, logits, 3.0))  # the order matters


def test_feature_terms_are_the_weighted_pure_losses():
    x, y = _batch()
    fitnets = FitNets(*_pair(), beta=7.0, ce_weight=0.2, kd_weight=0.5, T=2.0)
    logits, terms, t_logits, t_feats = _expected_and_terms(fitnets, x, y)
    s_feats = fitnets.student(x, features=True)[1]
    torch.testing.assert_close(terms["hint"], 7.0 * hint_loss(fitnets.regressor(s_feats.stages[1]), t_feats.stages[1]))
    torch.testing.assert_close(terms["ce"], 0.2 * F.cross_entropy(logits, y))
    torch.testing.assert_close(terms["kd"], 0.5 * kd_loss(logits, t_logits, 2.0))

    at = AttentionTransfer(*_pair(), beta=11.0, stages=(2, 3))
    logits, terms, _, t_feats = _expected_and_terms(at, x, y)
    s_feats = at.student(x, features=True)[1]
    expected = 11.0 * sum(at_loss(s_feats.stages[i], t_feats.stages[i]) for i in (1, 2))
    torch.testing.assert_close(terms["at"], expected)

    fsp = FSP(*_pair(), weight=3.0, ce_weight=0.5)
    logits, terms, _, t_feats = _expected_and_terms(fsp, x, y)
    s_feats = fsp.student(x, features=True)[1]
    expected = 3.0 * fsp_loss(consecutive_pairs(s_feats), consecutive_pairs(t_feats))
    torch.testing.assert_close(terms["fsp"], expected)
    torch.testing.assert_close(terms["ce"], 0.5 * F.cross_entropy(logits, y))

    review = ReviewKD(*_pair(), weight=2.0, warmup=0.5)
    review.set_progress(0.25)  # half-way through the warm-up: factor 0.5
    logits, terms, _, t_feats = _expected_and_terms(review, x, y)
    s_feats = review.student(x, features=True)[1]
    fused = review.review(review.student_taps(s_feats))
    expected = 2.0 * 0.5 * hcl_loss(fused, review.teacher_taps(t_feats))
    torch.testing.assert_close(terms["hcl"], expected)


def test_crd_terms_are_beta_times_both_nce_directions():
    data = random_images(40)
    crd = CRD(*_pair(), train_labels=data.labels, k=8, beta=0.4, kd_weight=0.6, seed=0)
    reference = copy.deepcopy(crd)
    x, y = _batch()
    index = torch.arange(4)
    logits, terms = crd.train()(x, y, index)
    reference.train()
    s_logits, s_feats = reference.student(x, features=True)
    t_logits, t_feats = reference.teacher(x, features=True)
    idx = contrast_indices(data.labels, index, 8, reference.generator)
    p_t, p_s = reference.memory(reference.embed_student(s_feats.pooled),
                                reference.embed_teacher(t_feats.pooled), index, idx)
    torch.testing.assert_close(terms["crd"], 0.4 * (nce_loss(p_t, 40) + nce_loss(p_s, 40)))
    torch.testing.assert_close(terms["kd"], 0.6 * kd_loss(logits, t_logits, 4.0))


def test_reviewkd_warm_up_follows_the_progress():
    review = ReviewKD(*_pair(), weight=1.0, warmup=0.4)
    x, y = _batch()
    review.set_progress(0.4)
    full = review.train()(x, y)[1]["hcl"].item()
    assert full > 0
    for progress, factor in ((0.0, 0.0), (0.1, 0.25), (0.2, 0.5), (0.8, 1.0)):
        review.set_progress(progress)
        assert review(x, y)[1]["hcl"].item() == pytest.approx(factor * full, rel=1e-5), progress


@pytest.mark.parametrize("make, term", [
    (lambda s, t, d: FitNets(s, t, ce_weight=0.0), "hint"),
    (lambda s, t, d: AttentionTransfer(s, t, ce_weight=0.0), "at"),
    (lambda s, t, d: FSP(s, t, ce_weight=0.0), "fsp"),
    (lambda s, t, d: CRD(s, t, train_labels=d.labels, k=8, ce_weight=0.0), "crd"),
    (lambda s, t, d: ReviewKD(s, t, ce_weight=0.0), "hcl"),
], ids=["FitNets", "AT", "FSP", "CRD", "ReviewKD"])
def test_the_feature_term_alone_trains_the_student_and_never_the_teacher(make, term):
    data = random_images(40)
    student, teacher = _pair()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    distiller = make(student, teacher, data)
    x, y = _batch()
    _, terms = distiller.train()(x, y, index=torch.arange(4))
    assert set(terms) == {term}, "CE weight 0: only the feature term"
    terms[term].backward()
    grads = [p.grad for p in distiller.student.stages[0].parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads), f"{term} does not reach the student"
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    fit(distiller, data, None, epochs=1, batch_size=16, progress=False)
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key]), f"teacher changed: {key}"


# --------------------------------------------------------------- the taps
def test_fsp_uses_the_official_consecutive_taps():
    student, teacher = _pair()
    distiller = FSP(student, teacher)
    x, y = _batch()
    _, terms = distiller.train()(x, y)
    _, s = student(x, features=True)
    with torch.no_grad():
        _, t = teacher(x, features=True)
    official = [(s.stem, s.stages[0]), (s.stages[0], s.stages[1]), (s.stages[1], s.stages[2])]
    official_t = [(t.stem, t.stages[0]), (t.stages[0], t.stages[1]), (t.stages[1], t.stages[2])]
    torch.testing.assert_close(terms["fsp"], fsp_loss(official, official_t))


def test_wrn_taps_are_the_official_ones():
    """RepDistiller wrn.py: stages are raw residual sums; preact = those sums through the
    *next* BatchNorm (block2/3's first bn1, the final bn), without ReLU."""
    torch.manual_seed(0)
    wrn = build_model("wrn_16_2")
    for mode in (False, True):
        wrn.train(mode)
        x = torch.randn(4, 3, 32, 32)
        sums = []
        hooks = [stage.register_forward_hook(lambda m, i, o: sums.append(o)) for stage in wrn.stages]
        with torch.no_grad():
            _, feats = wrn(x, features=True)
        for h in hooks:
            h.remove()
        next_bns = [wrn.stages[1][0].bn1, wrn.stages[2][0].bn1, wrn.bn]
        for i, (stage, preact, raw, bn) in enumerate(zip(feats.stages, feats.preact, sums, next_bns)):
            torch.testing.assert_close(stage, raw)  # not a post-ReLU map
            assert stage.min() < 0
            if mode:  # batch statistics, as the network applies the BN in training
                mean = raw.mean((0, 2, 3), keepdim=True)
                var = raw.var((0, 2, 3), unbiased=False, keepdim=True)
                expected = (raw - mean) / (var + bn.eps).sqrt() * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
            else:
                expected = F.batch_norm(raw, bn.running_mean, bn.running_var, bn.weight, bn.bias, False)
            torch.testing.assert_close(preact, expected, msg=f"preact {i + 1} is not the next BN of the sum")
            if mode:  # (in eval mode at initialisation the BN is nearly the identity)
                assert not torch.allclose(preact, raw, atol=1e-3)
