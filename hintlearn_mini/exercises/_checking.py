"""What every exercise check shares: the result it returns, how it reads the learner's
answer, and the one rule that names a mistake.

A check is a function decorated with :func:`check`: it returns the message of a right
answer, or raises :class:`Wrong` with a hint; the decorator prints and returns a
:class:`CheckResult` either way, so a wrong answer never stops a chapter.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

# A mistake is named when ‖answer − f·reference‖ ≤ MISTAKE_RTOL · ‖f·reference‖ (``named_mistake``).
MISTAKE_RTOL = 1e-3


@dataclass
class CheckResult:
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return ("✔ " if self.passed else "✘ ") + self.message

    def require(self) -> None:
        """Raise ``AssertionError`` with the message unless the answer passed."""
        if not self.passed:
            raise AssertionError(self.message)


class Wrong(Exception):
    """A wrong answer: the message says what is wrong and how to fix it."""


def check(body):
    """Turn ``body(fn, ...)`` (returns the message of a right answer, raises :class:`Wrong`
    for a wrong one) into a check that prints its :class:`CheckResult` and returns it."""
    @functools.wraps(body)
    def run(*args, **kwargs) -> CheckResult:
        try:
            result = CheckResult(True, body(*args, **kwargs))
        except Wrong as wrong:
            result = CheckResult(False, str(wrong))
        print(repr(result))
        return result
    return run


def call(fn, *args):
    """Run the learner's function; an exception it raises becomes a :class:`Wrong` that says which."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise Wrong("not answered yet: the function raises NotImplementedError. "
                    "Write its body and run the check again.") from None
    except Exception as error:  # the learner's code may fail in any way: say how
        raise Wrong(f"your function raised {type(error).__name__}: {error}") from None


def tensor_answer(fn, args, expected_shape, shape_hint: str) -> torch.Tensor:
    """``fn(*args)``, which must be a tensor of ``expected_shape``."""
    answer = call(fn, *args)
    if not isinstance(answer, torch.Tensor):
        raise Wrong(f"return a tensor; got {type(answer).__name__}")
    if answer.shape != expected_shape:
        raise Wrong(f"shape {tuple(answer.shape)}; expected {tuple(expected_shape)}{shape_hint}")
    return answer


def scalar_answer(fn, args, hint: str = "") -> torch.Tensor:
    """``fn(*args)``, which must be a one-element tensor, as a 0-d tensor."""
    answer = call(fn, *args)
    if not isinstance(answer, torch.Tensor) or answer.numel() != 1:
        raise Wrong(f"return a scalar tensor{hint}")
    return answer.reshape(())


def float_answer(fn, args, what: str) -> float:
    """``fn(*args)`` read as a float."""
    answer = call(fn, *args)
    try:
        return float(answer)
    except (TypeError, ValueError):
        raise Wrong(f"return {what}; got {answer!r}") from None


def named_mistake(answer: torch.Tensor, reference: torch.Tensor, mistakes) -> str | None:
    """The hint of the first ``(f, hint)`` of ``mistakes`` for which the answer is the
    reference times f, ‖answer − f·reference‖ ≤ MISTAKE_RTOL · ‖f·reference‖, or None.

    The tolerance is relative to the mistaken value f·reference itself, so a factor of
    any sign or size (−1 for a flipped sign, 1/160 for two missing factors) is named."""
    answer = answer.detach().double()
    for factor, hint in mistakes:
        mistaken = factor * reference.detach().double()
        if (answer - mistaken).norm() <= MISTAKE_RTOL * mistaken.norm():
            return hint
    return None
