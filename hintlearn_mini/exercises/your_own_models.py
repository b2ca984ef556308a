"""The check of chapter 9, ``book/09_your_own_models.ipynb``: pairing a teacher's and a
student's layers by resolution, as the feature methods need for models of your own (the
package's ``your_own_models``; FitNets' hint and guided layers, Romero et al. 2015)."""
from __future__ import annotations

from ._checking import Wrong, call, check

__all__ = ["check_matching_layers"]


def _matching_layers(teacher_shapes: dict[str, tuple], student_shapes: dict[str, tuple]) -> dict[str, str]:
    """The reference of ``ex-matching-layers``: for each teacher layer with a (C, H, W)
    output, the *last* student layer (in order) whose output has the same H × W; teacher
    layers without such a student layer are left out."""
    pairs = {}
    for t_name, t_shape in teacher_shapes.items():
        same = [s_name for s_name, s_shape in student_shapes.items()
                if len(s_shape) == 3 and len(t_shape) == 3 and s_shape[1:] == t_shape[1:]]
        if same:
            pairs[t_name] = same[-1]
    return pairs


@check
def check_matching_layers(fn):
    """Exercise ``ex-matching-layers``: ``fn(teacher_shapes, student_shapes)`` ->
    {teacher layer: student layer}, given {layer name: output shape without the batch}."""
    teacher = {"stem": (64, 8, 8), "layer1": (64, 8, 8), "layer2": (128, 4, 4), "layer3": (256, 2, 2),
               "fc": (10,)}
    student = {"f0": (16, 16, 16), "f1": (16, 8, 8), "f2": (24, 4, 4), "f3": (24, 4, 4), "f4": (40, 1, 1),
               "pool": (40, 1, 1), "head": (10,)}
    expected = _matching_layers(teacher, student)
    answer = call(fn, teacher, student)
    if not isinstance(answer, dict):
        raise Wrong(f"return a dict {{teacher layer: student layer}}; got {type(answer).__name__}")
    if answer.get("layer2") == "f2":
        raise Wrong("layer2 pairs with f2, but f3 has the same 4×4 size and is "
                    "deeper: take the last student layer of that size")
    if "fc" in answer or "layer3" in answer:
        raise Wrong("only (C, H, W) maps pair up, and only with a student map of "
                    "the same H × W: leave out layers without one (fc, layer3 here)")
    if answer != expected:
        raise Wrong(f"expected {expected}, got {answer}")
    return f"correct: {expected}"
