#!/bin/bash
# The whole benchmark of the converged laptop regime (100 images per class, 64 epochs), in
# the order the book needs it: the ten methods at five seeds, FSP's fast optimization, the
# thin-and-deep pair, the epoch-matched controls of both pairs, the diagnostics at three
# seeds. Resumable: rows already in book/results/ are skipped, so it may run over several
# sittings; chapter 8 prints what it costs on two cores (never time anything beside it).
#
#   HINTLEARN_DATA=/path/to/cifar10-jpeg bash tools/converged_benchmark.sh
#
# Run it from a checkout whose training code does not change meanwhile (for example a
# `git worktree add --detach ../benchtree main`), with RESULTS pointing at the checkout
# whose book/results/ should receive the rows.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-.venv/bin/python}
RESULTS=${RESULTS:-book/results}
JOBS=${JOBS:-2}  # two one-thread runs side by side (the rows record threads and jobs)
B=("$PYTHON" -m hintlearn_mini.bench --per-class 100 --epochs 64 --jobs "$JOBS" --out "$RESULTS/bench-laptop.csv")
"${B[@]}" --seeds 0 1 2 3 4
"$PYTHON" -m hintlearn_mini.bench --per-class 100 --epochs 64 --fast-optimization 8 16 32 64 \
    --seeds 0 1 2 3 4 --out "$RESULTS/fsp-fast.csv"
"${B[@]}" --pair resnet32:resnet44_half --methods "student alone" KD "FitNets one-stage" "FitNets two-stage" \
    --seeds 0 1 2 3 4
"${B[@]}" --controls --seeds 0 1 2 3 4
"${B[@]}" --pair resnet32:resnet44_half --controls --seeds 0 1 2 3 4
"${B[@]}" --diagnostics --seeds 0 1 2
