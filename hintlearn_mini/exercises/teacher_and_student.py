"""The check of chapter 1, ``book/01_teacher_and_student.ipynb``: the CIFAR ResNets of
He et al. 2016 (``models.CifarResNet``), counted by hand."""
from __future__ import annotations

from ..models import CifarResNet, count_parameters
from ._checking import Wrong, call, check

__all__ = ["check_resnet_parameters"]


def _parameter_hint(diff: int, blocks: int, widths, classes: int) -> str:
    """What a count short by ``diff`` parameters most likely left out."""
    stem, *stages = widths
    bn = 2 * (stem + sum(2 * w * blocks for w in stages))  # BN weight + bias everywhere
    if diff == classes:
        return "the classifier (a Linear layer) has a bias too: add num_classes"
    if diff > 0 and diff % 2 == 0 and diff <= bn + 4 * sum(stages):
        return ("some BatchNorm parameters are missing: each BatchNorm2d(C) has 2·C "
                "(weight and bias), including those of the 1×1 projection shortcuts")
    if diff > 0:
        return ("a stage whose width or stride changes starts with a 1×1 projection "
                "shortcut (conv + BatchNorm); did you count it?")
    return "count every convolution (3×3, no bias), BatchNorm (weight and bias) and the classifier"


@check
def check_resnet_parameters(fn):
    """Exercise ``ex-resnet-parameters``: ``fn(blocks, widths, num_classes)`` counts a
    CIFAR ResNet's parameters.

    ``widths`` is (stem, stage1, stage2, stage3), e.g. (16, 16, 32, 64) for resnet8.
    """
    cases = [(1, (16, 16, 32, 64), 10), (3, (16, 16, 32, 64), 10), (1, (32, 64, 128, 256), 100)]
    for blocks, widths, classes in cases:
        expected = count_parameters(CifarResNet(blocks, widths, classes))
        answer = call(fn, blocks, widths, classes)
        if not isinstance(answer, int):
            raise Wrong(f"return an int; got {type(answer).__name__} ({answer!r})")
        if answer != expected:
            diff = expected - answer
            raise Wrong(f"for blocks={blocks}, widths={widths}, num_classes={classes} you count {answer:,} but "
                        f"the model has {expected:,} ({diff:+,}). Hint: "
                        f"{_parameter_hint(diff, blocks, widths, classes)}.")
    return "correct for resnet8, resnet20 and resnet8x4 (100 classes)."
