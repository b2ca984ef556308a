"""hintlearn_mini: the companion package of the Hint Learning book.

Layers, each importing only those above it:

* ``hardware``            the device and the precision (bfloat16 where native);
* ``losses``              every loss as a pure function of tensors;
* ``data``, ``views``, ``models``  CIFAR as tensors; what a run sees of it (augmented
  views, batches); networks with their features exposed;
* ``methods``             the ``Distiller`` base and one file per method;
* ``train``, ``profiles``, ``checkpoints``, ``zoo``, ``teacher_outputs``, ``runs``,
  ``bench``               running experiments;
* ``stats``               paired intervals over shared seeds: when a difference is clear;
* ``your_own_models``     any classifier (torchvision's) tapped by layer name for the methods;
* ``lesson``, ``tables``, ``plots``, ``exercises``, ``probes``  the teaching layer: a
  chapter's set-up and glue, result tables, figures, exercise checks, the hint probe.

``tests/test_package_shape.py`` checks that there is no import cycle and that the
running layer imports nothing from the teaching layer.
"""
__version__ = "0.1.0"
