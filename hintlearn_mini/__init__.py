"""hintlearn_mini: the companion package of the Hint Learning book.

Layers, each importing only those above it:

* ``hardware``            the device and the precision (bfloat16 where native);
* ``losses``              every loss as a pure function of tensors;
* ``data``, ``models``    CIFAR as tensors; networks with their features exposed;
* ``methods``             the ``Distiller`` base and one file per method;
* ``train``, ``profiles``, ``checkpoints``, ``zoo``, ``teacher_outputs``, ``runs``,
  ``bench``               running experiments;
* ``stats``               paired intervals over shared seeds: when a difference is clear;
* ``your_own_models``     any classifier (torchvision's) tapped by layer name for the methods;
* ``exercises``, ``plots``  teaching helpers for the notebooks.
"""
__version__ = "0.1.0"
