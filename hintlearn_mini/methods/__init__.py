"""Distillation methods: a common :class:`Distiller` base and one file per method.

Each method pairs a pure loss from :mod:`hintlearn_mini.losses` with the trainable
parts it needs (regressors, embeddings, fusion modules).
"""
from .base import Distiller, freeze
from .kd import KD

__all__ = ["Distiller", "freeze", "KD"]
