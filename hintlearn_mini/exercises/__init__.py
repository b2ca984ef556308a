"""Automatic checks for the exercises at the end of each chapter, one module per chapter
(``book/02_knowledge_distillation.ipynb`` ↔ ``exercises/knowledge_distillation.py``).

Each ``check_*`` function runs the learner's answer on fixed inputs, compares it with
the package's reference, and returns a :class:`CheckResult` that says *what* is wrong
(a missing T², a wrong reduction, a wrong axis...), not only that something is. A
check never raises on a wrong answer, so a chapter can be run top to bottom before
the exercises are done; ``result.passed`` (or ``bool(result)``) tells the outcome and
``result.require()`` raises for graders that want an exception. Each check's docstring
names the label of its exercise in the chapter (``ex-soft-targets``...).
"""
from ._checking import CheckResult
from .attention_transfer import check_abs_attention_map, check_paper_at_loss
from .comparison import check_kendall_tau, ordering_agreement
from .crd import check_masked_info_nce, check_queue_info_nce
from .fitnets import check_hint_regressor
from .fsp import check_fsp_correlation, check_weighted_fsp_loss
from .knowledge_distillation import check_kd_gradient, check_soft_cross_entropy, check_soft_targets
from .reviewkd import check_hcl_levels
from .teacher_and_student import check_resnet_parameters
from .your_own_models import check_matching_layers

__all__ = ["CheckResult",
           "check_resnet_parameters",                                                  # chapter 1
           "check_soft_targets", "check_soft_cross_entropy", "check_kd_gradient",       # chapter 2
           "check_hint_regressor",                                                     # chapter 3
           "check_paper_at_loss", "check_abs_attention_map",                           # chapter 4
           "check_fsp_correlation", "check_weighted_fsp_loss",                         # chapter 5
           "check_masked_info_nce", "check_queue_info_nce",                            # chapter 6
           "check_hcl_levels",                                                         # chapter 7
           "ordering_agreement", "check_kendall_tau",                                  # chapter 8
           "check_matching_layers"]                                                    # chapter 9
