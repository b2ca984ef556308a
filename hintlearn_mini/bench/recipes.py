"""The benchmark's runs, each defined once: a named recipe for training one seed.

A :class:`Recipe` says how a row of the benchmark is trained: the module ``fit`` trains
(``build``), the stage it is trained after, if any (``stage_one``: FitNets' hints, FSP's
initialisation), and whether it gets the two-stage methods' extra epochs (the
epoch-matched controls). Its ``name`` is the benchmark CSV's ``method`` column; chapters
and the speed measurements use the objects themselves (``recipes.KD``, ``METHODS``),
never a respelt or parsed name. :func:`train_recipe` trains any of them: one function,
no branch per method.

Chapters: ``book/08_comparison.ipynb`` (all of them), the method chapters (their own).
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, replace
from typing import Callable

from torch import nn

from .. import methods
from ..data import ImageSet
from ..methods.dkd import default_beta
from ..methods.reviewkd import default_weight
from ..models import build_model
from ..profiles import Profile, fit_kwargs, stage_one_kwargs
from ..runs import cached_fit
from ..train import History, fit, seed_everything

__all__ = ["Recipe", "train_recipe", "student", "METHODS", "CONTROLS", "DIAGNOSTICS", "ALL_RECIPES",
           "find_recipes", "Knob", "KNOBS", "TUNING_FACTORS", "TUNING_GRID"]

# build(profile, teacher, train_set, student) -> the module fit trains
Build = Callable[[Profile, nn.Module, ImageSet, nn.Module], nn.Module]
# stage_one(profile, teacher, student) -> (distiller, the parameters stage 1 trains)
StageOne = Callable[[Profile, nn.Module, nn.Module], tuple]


@dataclass(frozen=True)
class Recipe:
    """One benchmark row: ``name`` (the CSV's ``method``), the method ``family`` it
    belongs to, how to ``build`` the module ``fit`` trains from a fresh (or stage-1
    trained) student, an optional ``stage_one``, ``epoch_matched`` (the stage-1 epochs
    added, a control) and ``varies``: the recipe a control or diagnostic changes one
    setting of (the row it is compared with)."""

    name: str
    family: str
    build: Build
    stage_one: StageOne | None = None
    epoch_matched: bool = False
    varies: Recipe | None = None

    def __repr__(self) -> str:
        return f"Recipe({self.name!r})"

    def __reduce__(self):  # to a worker process by name: its functions are not picklable
        return _recipe_named, (self.name,)


def student(profile: Profile) -> nn.Module:
    """A fresh student of the profile's pair, with one output per class."""
    return build_model(profile.student, 100 if profile.dataset == "cifar100" else 10)


def train_recipe(recipe: Recipe, profile: Profile, teacher: nn.Module, train_set: ImageSet,
                 test_set: ImageSet, seed: int, progress: bool = False,
                 validation_set: ImageSet | None = None) -> tuple[History, int]:
    """Train one seed of ``recipe``; returns its history and the trainable parameters
    the method adds to the student (regressors, embeddings, fusion modules).
    ``progress``: a progress bar per stage, labelled with the recipe and the seed;
    ``validation_set``: evaluated beside the test set (the history's ``val_acc``).

    A one-stage recipe goes through the run cache (``runs.cached_fit``), so a chapter
    asking for the same run reads it back. A two-stage recipe trains stage 1 at a
    constant learning rate (``stage_one_kwargs``, as RepDistiller), then ``build``'s
    module from the stage-1 student with the profile's schedule.
    """
    if recipe.epoch_matched:
        profile = replace(profile, epochs=profile.epochs + profile.stage_one_epochs())
    if recipe.stage_one is None:
        module, history = cached_fit(lambda: recipe.build(profile, teacher, train_set, student(profile)),
                                     train_set, test_set, seed=seed, profile=profile, progress=progress,
                                     desc=f"{recipe.name}, seed {seed}", validation_set=validation_set)
        return history, _added_parameters(module)
    seed_everything(seed)
    first, parameters = recipe.stage_one(profile, teacher, student(profile))
    fit(first, train_set, None, seed=seed, parameters=parameters, progress=progress,
        desc=f"{recipe.name}, stage 1, seed {seed}", **stage_one_kwargs(profile))
    module = recipe.build(profile, teacher, train_set, first.student)
    history = fit(module, train_set, test_set, seed=seed, progress=progress, desc=f"{recipe.name}, seed {seed}",
                  validation_set=validation_set, **fit_kwargs(profile))
    return history, _added_parameters(first)


def _added_parameters(module: nn.Module) -> int:
    extra = module.extra_parameters() if isinstance(module, methods.Distiller) else []
    return sum(p.numel() for p in extra if p.requires_grad)


# How each method is built (the stage-1 parts first).

def _hints(beta: float = 100.0) -> StageOne:
    """FitNets' stage 1: the hint loss alone, weighted by ``beta``, trains the student up
    to its guided layer (alone, a weight scales the step: the stage's learning rate)."""
    def stage_one(profile, teacher, student):
        hints = methods.FitNets(student, teacher, beta=beta, ce_weight=0.0)
        return hints, hints.guided_parameters()
    return stage_one


def _fsp_initialisation(weight: float = 1.0) -> StageOne:
    """FSP's stage 1: the FSP loss alone (weighted) trains the student's feature layers."""
    def stage_one(profile, teacher, student):
        fsp = methods.FSP(student, teacher, weight=weight)
        return fsp, fsp.feature_parameters()
    return stage_one


def _crd(student, teacher, train_set, **options):
    with warnings.catch_warnings():  # K adapts to small training sets; chapter 6 shows the warning
        warnings.simplefilter("ignore")
        return methods.CRD(student, teacher, train_labels=train_set.labels, **options)


def _dkd(profile, student, teacher, scale=1.0):
    return methods.DKD(student, teacher, beta=scale * default_beta(profile.teacher, profile.student))


def _reviewkd(profile, student, teacher, scale=1.0, review=True):
    weight = scale * default_weight(profile.teacher, profile.student)
    return methods.ReviewKD(student, teacher, weight=weight, review=review)


# The methods of the book, in the order of its chapters. One convention for the combined
# methods: "X + KD" is the book's KD (0.1·CE + 0.9·KD_T, T = 4, RepDistiller's KD script)
# plus X's own term, so that X + KD against KD measures X's term alone. (RepDistiller runs
# CRD + KD with 1·CE + 1·KD instead.)
KD_AND = {"ce_weight": 0.1, "kd_weight": 0.9}
STUDENT_ALONE = Recipe("student alone", "student alone", lambda p, t, d, s: s)
KD = Recipe("KD", "KD", lambda p, t, d, s: methods.KD(s, t))
FITNETS_ONE_STAGE = Recipe("FitNets one-stage", "FitNets", lambda p, t, d, s: methods.FitNets(s, t))
FITNETS_TWO_STAGE = Recipe("FitNets two-stage", "FitNets", lambda p, t, d, s: methods.KD(s, t), stage_one=_hints())
AT = Recipe("AT", "AT", lambda p, t, d, s: methods.AttentionTransfer(s, t))
KD_AT = Recipe("KD + AT", "AT", lambda p, t, d, s: methods.AttentionTransfer(s, t, **KD_AND))
FSP_TWO_STAGE = Recipe("FSP two-stage", "FSP", lambda p, t, d, s: s, stage_one=_fsp_initialisation())
CRD = Recipe("CRD", "CRD", lambda p, t, d, s: _crd(s, t, d))
CRD_KD = Recipe("CRD + KD", "CRD", lambda p, t, d, s: _crd(s, t, d, **KD_AND))
REVIEWKD = Recipe("ReviewKD", "ReviewKD", lambda p, t, d, s: _reviewkd(p, s, t))
DKD = Recipe("DKD", "DKD", lambda p, t, d, s: _dkd(p, s, t))
METHODS = (STUDENT_ALONE, KD, FITNETS_ONE_STAGE, FITNETS_TWO_STAGE, AT, KD_AT, FSP_TWO_STAGE, CRD, CRD_KD,
           REVIEWKD, DKD)

# The tuning grid (issue 27; ``tuning.py`` runs it): every method's own setting at the
# same factors of its default, KD's temperature too. The ×1 recipe of a knob is the method
# itself, so the grid's ×1 runs are the benchmark's default runs.
TUNING_FACTORS = (0.1, 0.3, 1.0, 3.0, 10.0)


@dataclass(frozen=True)
class Knob:
    """A method's own setting the grid scales: ``recipe`` at its default, the
    ``setting``'s name, ``default(profile)``: its value for the profile's pair (where it
    comes from: ``source``),
    ``scaled(factor)``: the fields of ``recipe`` that change at ``factor`` × default, and
    ``label``: how a scaled recipe's name ends (``{factor}``, or ``{value}`` for a default
    that is the same for every pair: "β×0.1", "T=8")."""

    recipe: Recipe
    setting: str
    default: Callable[[Profile], float]
    source: str
    scaled: Callable[[float], dict]
    label: str

    def at(self, factor: float) -> Recipe:
        """The recipe with the setting at ``factor`` × its default (×1: the method
        itself); the same object every time it is asked for."""
        return _scaled_recipe(self, factor)


@functools.lru_cache(maxsize=None)
def _scaled_recipe(knob: Knob, factor: float) -> Recipe:
    if factor == 1:
        return knob.recipe
    value = knob.default(None) * factor if "{value}" in knob.label else None  # a constant default: KD's T
    label = knob.label.format(factor=f"{factor:g}", value=f"{value:g}" if value is not None else "")
    return replace(knob.recipe, name=f"{knob.recipe.name}, {label}", varies=knob.recipe, **knob.scaled(factor))


KNOBS = (
    Knob(KD, "KD weight", lambda p: 0.9, "Hinton et al. 2015 via RepDistiller: 0.1 CE + 0.9 KD",
         lambda x: {"build": lambda p, t, d, s: methods.KD(s, t, kd_weight=0.9 * x)}, "KD weight ×{factor}"),
    Knob(KD, "T", lambda p: 4.0, "RepDistiller's default temperature",
         lambda x: {"build": lambda p, t, d, s: methods.KD(s, t, T=4.0 * x)}, "T={value}"),
    Knob(FITNETS_ONE_STAGE, "β", lambda p: 100.0, "RepDistiller's --beta for hints",
         lambda x: {"build": lambda p, t, d, s: methods.FitNets(s, t, beta=100.0 * x)}, "β×{factor}"),
    Knob(FITNETS_TWO_STAGE, "β", lambda p: 100.0, "RepDistiller's --beta for hints, in stage 1",
         lambda x: {"stage_one": _hints(100.0 * x)}, "β×{factor}"),
    Knob(AT, "β", lambda p: 1000.0, "Zagoruyko & Komodakis 2017's CIFAR experiments",
         lambda x: {"build": lambda p, t, d, s: methods.AttentionTransfer(s, t, beta=1000.0 * x)}, "β×{factor}"),
    Knob(KD_AT, "β", lambda p: 1000.0, "Zagoruyko & Komodakis 2017's CIFAR experiments",
         lambda x: {"build": lambda p, t, d, s: methods.AttentionTransfer(s, t, beta=1000.0 * x, **KD_AND)},
         "β×{factor}"),
    Knob(FSP_TWO_STAGE, "weight", lambda p: 1.0, "RepDistiller's FSP stage 1 (no weight: 1)",
         lambda x: {"stage_one": _fsp_initialisation(x)}, "weight ×{factor}"),
    Knob(CRD, "β", lambda p: 0.8, "RepDistiller's --beta for CRD",
         lambda x: {"build": lambda p, t, d, s: _crd(s, t, d, beta=0.8 * x)}, "β×{factor}"),
    Knob(CRD_KD, "β", lambda p: 0.8, "RepDistiller's --beta for CRD",
         lambda x: {"build": lambda p, t, d, s: _crd(s, t, d, beta=0.8 * x, **KD_AND)}, "β×{factor}"),
    Knob(REVIEWKD, "weight", lambda p: default_weight(p.teacher, p.student),
         "ReviewKD's official weight of the pair where its script ran it, else our default 1.0 "
         "(reviewkd.default_weight)",
         lambda x: {"build": lambda p, t, d, s: _reviewkd(p, s, t, scale=x)}, "weight ×{factor}"),
    Knob(DKD, "β", lambda p: default_beta(p.teacher, p.student),
         "DKD's official β of the pair where its configs ran it, else our default 2.0 (dkd.default_beta)",
         lambda x: {"build": lambda p, t, d, s: _dkd(p, s, t, scale=x)}, "β×{factor}"),
)
TUNING_GRID = tuple(dict.fromkeys(knob.at(f) for knob in KNOBS for f in TUNING_FACTORS))  # KD ×1 once


def _knob(recipe: Recipe, setting: str) -> Knob:
    return next(k for k in KNOBS if k.recipe is recipe and k.setting == setting)


# Controls of the two-stage methods: the baselines given the stage-1 epochs too.
STUDENT_ALONE_EPOCH_MATCHED = replace(STUDENT_ALONE, name="student alone, epoch-matched", epoch_matched=True,
                                      varies=STUDENT_ALONE)
KD_EPOCH_MATCHED = replace(KD, name="KD, epoch-matched", epoch_matched=True, varies=KD)
CONTROLS = (STUDENT_ALONE_EPOCH_MATCHED, KD_EPOCH_MATCHED)

# Diagnostics (chapter 8): the settings that explain a method which does not help.
KD_TEMPERATURES = (_knob(KD, "T").at(0.5), _knob(KD, "T").at(2))  # T = 2 and 8
AT_WEIGHTS = (_knob(AT, "β").at(0.1), _knob(AT, "β").at(10))
FITNETS_WEIGHTS = (_knob(FITNETS_ONE_STAGE, "β").at(0.1), _knob(FITNETS_ONE_STAGE, "β").at(10))
HINT_STAGES = (  # the hint at the first and the last stage instead of the middle one
    Recipe("FitNets one-stage, hint stage 1", "FitNets", lambda p, t, d, s: methods.FitNets(s, t, stage=1),
           varies=FITNETS_ONE_STAGE),
    Recipe("FitNets one-stage, hint stage 3", "FitNets", lambda p, t, d, s: methods.FitNets(s, t, stage=3),
           varies=FITNETS_ONE_STAGE),
)
CRD_WEIGHTS = (_knob(CRD, "β").at(0.1), _knob(CRD, "β").at(10))
CRD_IN_BATCH = Recipe("CRD, in-batch InfoNCE", "CRD", lambda p, t, d, s: _crd(s, t, d, in_batch=True),
                      varies=CRD)
FSP_WEIGHTS = (_knob(FSP_TWO_STAGE, "weight").at(0.1), _knob(FSP_TWO_STAGE, "weight").at(10))
REVIEWKD_WEIGHTS = (_knob(REVIEWKD, "weight").at(0.1), _knob(REVIEWKD, "weight").at(10))
REVIEWKD_NO_REVIEW = Recipe("ReviewKD, no review", "ReviewKD", lambda p, t, d, s: _reviewkd(p, s, t, review=False),
                            varies=REVIEWKD)
DIAGNOSTICS = (*KD_TEMPERATURES, *AT_WEIGHTS, *FITNETS_WEIGHTS, *HINT_STAGES, *CRD_WEIGHTS, CRD_IN_BATCH,
               *FSP_WEIGHTS, *REVIEWKD_WEIGHTS, REVIEWKD_NO_REVIEW)


ALL_RECIPES = tuple(dict.fromkeys((*METHODS, *CONTROLS, *DIAGNOSTICS, *TUNING_GRID)))


def find_recipes(names) -> list[Recipe]:
    """The recipes of these names, for the command line, where a user types them;
    an unknown name is an error that lists every name there is."""
    by_name = {r.name: r for r in ALL_RECIPES}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; valid methods: {', '.join(map(repr, by_name))}")
    return [by_name[n] for n in names]


def _recipe_named(name: str) -> Recipe:
    return find_recipes([name])[0]
