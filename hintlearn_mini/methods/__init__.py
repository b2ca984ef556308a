"""Distillation methods: a common :class:`Distiller` base and one file per method.

Each method pairs a pure loss from :mod:`hintlearn_mini.losses` with the trainable
parts it needs (regressors, embeddings, fusion modules).
"""
from .attention import AttentionTransfer
from .base import Distiller, freeze
from .crd import CRD
from .dkd import DKD
from .fitnets import FitNets
from .fsp import FSP
from .kd import KD
from .reviewkd import ReviewKD

__all__ = ["Distiller", "freeze", "KD", "FitNets", "AttentionTransfer", "FSP", "CRD", "ReviewKD", "DKD"]
