"""Break each guarantee of the package on purpose and check that a test catches it.

    python tools/mutations.py            # every mutation; exit 1 if one survives
    python tools/mutations.py --list     # the table, without running it
    python tools/mutations.py --match "stage 1"   # only those whose description matches

Each mutation replaces one exact piece of source in a *temporary copy* of the package
and tests (the checkout is never edited), then runs the tests named for it there. A
mutation is caught when those tests fail. A mutation whose text is no longer found is
reported as stale: update the table when the code it breaks changes.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    what: str        # the guarantee it breaks
    file: str        # relative to the repository root
    old: str         # exact text, found exactly once
    new: str
    tests: str       # pytest node ids (space-separated) that must catch it


G = "tests/test_guarantees.py::"
T = "tests/test_teacher_outputs.py::"
H = "tests/test_hardware.py::"
B = "tests/test_bench.py::"
X = "tests/test_exercises.py::"
EX = "hintlearn_mini/exercises/"
C = "tests/test_course.py::"
SE = "tests/test_stages_and_evaluation.py::"
CB = "tests/test_crd_bank.py::"
MUTATIONS = [
    Mutation("the teacher-output store's key leaves the augmentation recipe out", "hintlearn_mini/teacher_outputs.py",
             '"seed": seed, "precision": precision, "views": VIEW_RECIPE})', '"seed": seed, "precision": precision})',
             T + "test_the_store_key_holds_everything_that_makes_a_view_and_its_logits"),
    Mutation("the teacher-output store's key leaves the teacher out", "hintlearn_mini/teacher_outputs.py",
             'blob = json.dumps({"teacher": weights_fingerprint(teacher), ', 'blob = json.dumps({',
             T + "test_the_store_key_holds_everything_that_makes_a_view_and_its_logits"),
    Mutation("a stored logits file with other rows is read as valid", "hintlearn_mini/teacher_outputs.py",
             "if logits.shape[0] == len(self.data):", "if True:",
             T + "test_a_stored_file_with_other_rows_is_refused_and_recomputed"),
    Mutation("the teacher's logits are computed in another precision than the key says",
             "hintlearn_mini/teacher_outputs.py",
             "with autocast(self.precision, self.device):", 'with autocast("fp32", self.device):',
             T + "test_the_teachers_logits_are_computed_in_the_precision_the_key_says"),
    Mutation("CRD's banks are updated with the other network's embeddings", "hintlearn_mini/methods/crd.py",
             '(("student_bank", student_embed), ("teacher_bank", teacher_embed))',
             '(("student_bank", teacher_embed), ("teacher_bank", student_embed))',
             CB + "test_the_memory_bank_scores_and_updates_as_crd_defines_it"),
    Mutation("CRD scores each embedding against its own network's bank", "hintlearn_mini/methods/crd.py",
             "teacher_scores = self._scores(teacher_embed, self.student_bank.detach(), idx)",
             "teacher_scores = self._scores(teacher_embed, self.teacher_bank.detach(), idx)",
             CB + "test_the_memory_bank_scores_and_updates_as_crd_defines_it"),
    Mutation("CRD's Z leaves out the factor N", "hintlearn_mini/methods/crd.py",
             "self.z[0] = teacher_scores.mean().detach() * self.n_data",
             "self.z[0] = teacher_scores.mean().detach()",
             CB + "test_the_memory_bank_scores_and_updates_as_crd_defines_it"),
    Mutation("CRD's Z is recomputed on every batch", "hintlearn_mini/methods/crd.py",
             "if self.z[0] < 0:  # first call", "if True:  # first call",
             CB + "test_the_memory_bank_scores_and_updates_as_crd_defines_it"),
    Mutation("CRD's bank keeps the momentum's old share", "hintlearn_mini/methods/crd.py",
             "embed.detach() * (1 - self.momentum)", "embed.detach() * self.momentum",
             CB + "test_the_memory_bank_scores_and_updates_as_crd_defines_it"),
    Mutation("CRD's scores are computed in bfloat16 under autocast", "hintlearn_mini/methods/crd.py",
             "    @float32_loss\n    def forward(self, student_embed", "    def forward(self, student_embed",
             CB + "test_the_banks_scores_are_float32_under_bfloat16_autocast"),
    Mutation("FitNets' stage 1 trains with the labels too", "hintlearn_mini/bench/recipes.py",
             "hints = methods.FitNets(student, teacher, ce_weight=0.0)", "hints = methods.FitNets(student, teacher)",
             SE + "test_stage_one_trains_the_stem_and_stages_up_to_the_guided_layer_and_the_regressor_on_the_hint_alone"),
    Mutation("FitNets' stage 1 trains fewer layers than up to the guided one", "hintlearn_mini/methods/fitnets.py",
             "*student.stages[:self.stage], self.regressor]", "*student.stages[:self.stage - 1], self.regressor]",
             SE + "test_stage_one_trains_the_stem_and_stages_up_to_the_guided_layer_and_the_regressor_on_the_hint_alone"),
    Mutation("FitNets' stage 2 starts from a fresh student", "hintlearn_mini/bench/recipes.py",
             "module = recipe.build(profile, teacher, train_set, first.student)",
             "module = recipe.build(profile, teacher, train_set, student(profile))",
             SE + "test_stage_two_starts_from_the_weights_stage_one_trained"),
    Mutation("evaluation runs the model in training mode", "hintlearn_mini/train.py",
             "    model.eval()\n    out = torch.cat(", "    out = torch.cat(",
             SE + "test_evaluation_runs_in_eval_mode_and_leaves_batchnorm_statistics_untouched"),
    Mutation("the test set is subsampled like the training set", "hintlearn_mini/profiles.py",
             "    if profile.test_per_class is not None:\n        test_set = balanced_subset(test_set, profile.test_per_class, seed=0)",
             "    if profile.train_per_class is not None:\n        test_set = balanced_subset(test_set, profile.train_per_class, seed=0)",
             SE + "test_the_laptop_profile_tests_on_every_test_image"),
    Mutation("a distiller's progress moves once an epoch", "hintlearn_mini/train.py",
             "module.set_progress(((epoch - 1) + (step - 1) / steps) / epochs)",
             "module.set_progress((epoch - 1) / epochs)",
             SE + "test_a_distiller_sees_its_progress_at_every_step_from_zero"),
    Mutation("ReviewKD's warm-up never starts at zero", "hintlearn_mini/methods/reviewkd.py",
             "ramp = min(1.0, self.progress / self.warmup)", "ramp = min(1.0, 0.1 + self.progress / self.warmup)",
             SE + "test_reviewkds_warm_up_starts_at_zero_and_reaches_the_full_weight"),
    Mutation("a method's keyword is left out of the run key", "hintlearn_mini/methods/base.py",
             "elif not isinstance(value, nn.Module):", 'elif not isinstance(value, nn.Module) and name != "p":',
             "tests/test_runs.py::test_every_keyword_of_every_method_is_in_the_run_key"),
    Mutation("the run key keys on repr alone", "hintlearn_mini/runs.py",
             '"module": repr(module), "arguments": _plain(getattr(module, "arguments", {})),', '"module": repr(module),',
             "tests/test_runs.py::test_every_keyword_of_every_method_is_in_the_run_key"),
    Mutation("the run key leaves the thread count out", "hintlearn_mini/runs.py",
             '"threads": torch.get_num_threads(), ', "",
             "tests/test_runs.py::test_the_thread_count_is_in_the_run_key"),
    Mutation("a worker trains at the machine's thread count", "hintlearn_mini/bench/runner.py",
             "    torch.set_num_threads(threads)\n    _WORKER.clear()", "    _WORKER.clear()",
             B + "test_two_jobs_train_the_rows_of_one_job_bit_for_bit"),
    Mutation("a worker reseeds the views with its own number", "hintlearn_mini/bench/runner.py",
             "                                  task.seed)\n",
             "                                  task.seed + (_WORKER['jobs'] > 1))\n",
             B + "test_two_jobs_train_the_rows_of_one_job_bit_for_bit"),
    Mutation("data imports views back", "hintlearn_mini/data.py",
             "import torch\nfrom torch import Tensor\n", "import torch\nfrom torch import Tensor\n\nfrom .views import batches  # noqa\n",
             "tests/test_package_shape.py::test_the_package_has_no_import_cycle"),
    Mutation("the benchmark glues the book", "hintlearn_mini/bench/results.py",
             "from ..profiles import Profile\n", "from ..profiles import Profile\nfrom ..plots import plot_histories  # noqa\n",
             "tests/test_package_shape.py::test_the_running_layer_imports_nothing_from_the_teaching_layer"),
    Mutation("fit ignores its seed", "hintlearn_mini/train.py",
             "batches(train_set, batch_size, True, seed, epoch)", "batches(train_set, batch_size, True, 0, epoch)",
             G + "test_the_fit_seed_alone_changes_the_numbers"),
    Mutation("the batch order ignores the seed", "hintlearn_mini/views.py",
             "generator = torch.Generator().manual_seed(seed * 100_003 + epoch)\n",
             "generator = torch.Generator().manual_seed(epoch)\n",
             T + "test_a_view_depends_on_seed_epoch_and_row_not_on_the_batch_order"),
    Mutation("the views ignore the seed", "hintlearn_mini/views.py",
             "manual_seed(seed * 100_003 + epoch + 7_919)", "manual_seed(epoch + 7_919)",
             T + "test_a_view_depends_on_seed_epoch_and_row_not_on_the_batch_order"),
    Mutation("CRD's negatives ignore the run seed", "hintlearn_mini/methods/crd.py",
             "seed = int(torch.randint(2**31 - 1, ()).item())", "seed = 0",
             G + "test_the_run_seed_reaches_crds_negatives"),
    Mutation("augment returns the images unchanged", "hintlearn_mini/views.py",
             "    return apply_views(images, random_views(len(images), generator, padding), padding)",
             "    return images", G + "test_augmentation_makes_several_crops_and_flips_of_identical_images"),
    Mutation("views never flip", "hintlearn_mini/views.py",
             "return torch.where(views.flip[:, None, None, None], out.flip(3), out)", "return out",
             G + "test_augmentation_makes_several_crops_and_flips_of_identical_images"),
    Mutation("the run key hashes only the data's size", "hintlearn_mini/runs.py",
             '"train": train_set.fingerprint(), "test": test_set.fingerprint(),',
             '"train": len(train_set), "test": len(test_set),',
             "tests/test_runs.py::test_other_images_of_the_same_size_train_again"),
    Mutation("the run key drops the source fingerprint", "hintlearn_mini/runs.py",
             '"source": source_fingerprint(run_sources(module)),', '"source": None,',
             G + "test_every_component_of_the_run_cache_key_changes_it"),
    Mutation("a run key covers every method's file", "hintlearn_mini/runs.py",
             "    return shared + tuple(sorted(own))", "    return TRAINING_SOURCES",
             G + "test_every_module_is_fingerprinted_unless_it_only_shows_results"),
    Mutation("the run key drops the precision", "hintlearn_mini/runs.py",
             "precision=profile.resolved_precision())", "precision=None)",
             G + "test_every_component_of_the_run_cache_key_changes_it"),
    Mutation("the run key drops the initial weights", "hintlearn_mini/runs.py",
             '"initial_weights": weights_fingerprint(module),', '"initial_weights": None,',
             G + "test_every_component_of_the_run_cache_key_changes_it"),
    Mutation("cached weights are read without their sha256", "hintlearn_mini/runs.py",
             'load_checkpoint(module, weights, sha256=stored["sha256"])', "load_checkpoint(module, weights)",
             "tests/test_runs.py::test_a_cached_weights_file_that_fails_its_sha256_is_discarded_and_retrained"),
    Mutation("checkpoints are written in place", "hintlearn_mini/checkpoints.py",
             'atomic_save({"format": FORMAT, "arch": arch, "state_dict": state, "meta": meta or {}}, path)',
             'torch.save({"format": FORMAT, "arch": arch, "state_dict": state, "meta": meta or {}}, path)',
             G + "test_a_crash_while_writing_a_checkpoint_keeps_the_previous_one"),
    Mutation("run records are written in place", "hintlearn_mini/runs.py",
             'tmp = record.with_name(f".{record.name}.{os.getpid()}.tmp")', "tmp = record",
             G + "test_a_crash_while_writing_a_run_record_leaves_no_record"),
    Mutation("the benchmark CSV is written in place", "hintlearn_mini/bench/results.py",
             'tmp = Path(path).with_suffix(".tmp")', "tmp = Path(path)",
             G + "test_a_crash_while_writing_the_benchmark_csv_keeps_the_previous_file"),
    Mutation("KD swaps student and teacher", "hintlearn_mini/methods/kd.py",
             "kd_loss(logits, teacher_logits, self.T)", "kd_loss(teacher_logits, logits, self.T)",
             G + "test_kd_terms_are_the_weighted_pure_losses_in_student_teacher_order"),
    Mutation("KD ignores kd_weight", "hintlearn_mini/methods/kd.py",
             '"kd": self.kd_weight * kd_loss', '"kd": kd_loss',
             G + "test_kd_terms_are_the_weighted_pure_losses_in_student_teacher_order"),
    Mutation("KD ignores ce_weight", "hintlearn_mini/methods/kd.py",
             '"ce": self.ce_weight * ce_loss(logits, y)', '"ce": ce_loss(logits, y)',
             G + "test_kd_terms_are_the_weighted_pure_losses_in_student_teacher_order"),
    Mutation("feature methods ignore kd_weight", "hintlearn_mini/methods/base.py",
             'terms["kd"] = kd_weight * kd_loss', 'terms["kd"] = kd_loss',
             G + "test_feature_terms_are_the_weighted_pure_losses"),
    Mutation("the AT term is detached from the student", "hintlearn_mini/methods/attention.py",
             "at_loss(student_feats.stages[i - 1],", "at_loss(student_feats.stages[i - 1].detach(),",
             G + "test_the_feature_term_alone_trains_the_student_and_never_the_teacher"),
    Mutation("AT ignores beta", "hintlearn_mini/methods/attention.py",
             'losses = {"at": self.beta * at}', 'losses = {"at": at}',
             G + "test_feature_terms_are_the_weighted_pure_losses"),
    Mutation("FitNets ignores beta", "hintlearn_mini/methods/fitnets.py",
             '{"hint": self.beta * hint_loss(', '{"hint": hint_loss(',
             G + "test_feature_terms_are_the_weighted_pure_losses"),
    Mutation("ReviewKD ignores its warm-up", "hintlearn_mini/methods/reviewkd.py",
             "ramp = min(1.0, self.progress / self.warmup) if self.warmup > 0 else 1.0", "ramp = 1.0",
             G + "test_reviewkd_warm_up_follows_the_progress"),
    Mutation("FSP pairs the wrong taps", "hintlearn_mini/methods/fsp.py",
             "maps = [feats.stem, *feats.stages]", "maps = [feats.stem, *feats.preact]",
             G + "test_fsp_uses_the_official_consecutive_taps"),
    Mutation("WRN pre-activation taps are the raw sums", "hintlearn_mini/models.py",
             "preacts = [_bn_without_update(bn, s) for bn, s in zip(next_bns, stages)]",
             "preacts = list(stages)", G + "test_wrn_taps_are_the_official_ones"),
    Mutation("CRD ignores beta", "hintlearn_mini/methods/crd.py",
             '{"crd": self.beta * (nce_loss(p_t, n) + nce_loss(p_s, n))}', '{"crd": nce_loss(p_t, n) + nce_loss(p_s, n)}',
             G + "test_crd_terms_are_beta_times_both_nce_directions"),
    Mutation("step_costs times KD for every method", "hintlearn_mini/bench/speed.py",
             "speeds[case.name].append(_epoch_speed(make(case),",
             "speeds[case.name].append(_epoch_speed(make(KD_FROM_THE_STORE),",
             "tests/test_bench.py::test_each_step_cost_times_its_own_method"),
    Mutation("fit ignores the precision", "hintlearn_mini/train.py",
             "with autocast(precision, device):", 'with autocast("fp32", device):',
             H + "test_the_same_seed_gives_the_same_numbers_in_bf16"),
    Mutation("losses are not cast to float32", "hintlearn_mini/hardware.py",
             "return loss_fn(*_to_float32(args, cast), **{k: _to_float32(v, cast) for k, v in kwargs.items()})",
             "return loss_fn(*args, **kwargs)", H + "test_every_loss_computes_in_float32_under_bf16_autocast"),
    Mutation("KD never reads the stored logits", "hintlearn_mini/train.py",
             "module.stored_teacher_logits = store.epoch(epoch)", "store.epoch(epoch)",
             T + "test_kd_really_reads_the_stored_logits"),
    Mutation("the store computes other views than the batches show", "hintlearn_mini/teacher_outputs.py",
             "views = epoch_views(len(self.data), self.seed, epoch)",
             "views = epoch_views(len(self.data), self.seed, epoch + 1)",
             T + "test_stored_logits_are_the_teachers_outputs_for_the_batches_views"),
    Mutation("a corrupt store file is used as it is", "hintlearn_mini/teacher_outputs.py",
             "                problem = f\"it holds {logits.shape[0]} rows for {len(self.data)} images\"\n"
             "            except Exception as error:",
             "                problem = f\"it holds {logits.shape[0]} rows for {len(self.data)} images\"\n"
             "            except ZeroDivisionError as error:",
             T + "test_the_store_is_computed_once_and_read_back_by_later_runs"),
    Mutation("the bf16 attention map skips the float32 reduction", "hintlearn_mini/losses.py",
             "torch.linalg.vector_norm(feat, 2, dim=1, dtype=torch.float32)",
             "torch.linalg.vector_norm(feat, 2, dim=1).float()",
             "tests/test_hint_losses.py::test_attention_map_of_bfloat16_features_is_the_float32_map_of_their_values"),
    Mutation("stage 1 decays its learning rate", "hintlearn_mini/train.py",
             "lambda epoch: 1.0)", "lambda epoch: 0.5 ** epoch)",
             B + "test_stage_one_of_two_stage_methods_runs_at_a_constant_learning_rate"),
    Mutation("stage 1 trains on the profile's schedule", "hintlearn_mini/profiles.py",
             'epochs=profile.stage_one_epochs(), schedule="constant",', "epochs=profile.stage_one_epochs(),",
             B + "test_stage_one_of_two_stage_methods_runs_at_a_constant_learning_rate"),
    Mutation("fit ignores nesterov", "hintlearn_mini/train.py",
             "make_optimizer(params, lr, weight_decay, nesterov)", "make_optimizer(params, lr, weight_decay)",
             B + "test_paper_profile_uses_plain_momentum_as_repdistiller"),
    Mutation("a diagnostic trains the official setting", "hintlearn_mini/bench/recipes.py",
             'Recipe("KD, T=8", "KD", lambda p, t, d, s: methods.KD(s, t, T=8.0), varies=KD),',
             'Recipe("KD, T=8", "KD", lambda p, t, d, s: methods.KD(s, t), varies=KD),',
             B + "test_diagnostics_and_controls_train_the_setting_their_name_says"),
    Mutation("the epoch-matched control is not longer", "hintlearn_mini/bench/recipes.py",
             "profile = replace(profile, epochs=profile.epochs + profile.stage_one_epochs())", "pass",
             B + "test_diagnostics_and_controls_train_the_setting_their_name_says"),
    Mutation("CRD's in-batch diagnostic still uses the bank", "hintlearn_mini/methods/crd.py",
             "        if self.in_batch:  # B", "        if False:  # B",
             "tests/test_modern_methods.py::test_crd_in_batch_trains_the_embeddings_on_info_nce_without_the_bank"),
    Mutation("the run key fingerprints a display-only module", "hintlearn_mini/runs.py",
             '"models.py", "profiles.py",', '"models.py", "plots.py", "profiles.py",',
             G + "test_every_module_is_fingerprinted_unless_it_only_shows_results"),
    Mutation("the run key forgets a training module", "hintlearn_mini/runs.py",
             '"losses.py", "methods", "models.py",', '"losses.py", "methods",',
             G + "test_every_module_is_fingerprinted_unless_it_only_shows_results"),
    Mutation("the run key holds the profile's list of seeds", "hintlearn_mini/runs.py",
             "        settings.pop(plan)", "        pass",
             G + "test_the_seeds_and_pairs_a_profile_plans_are_not_part_of_a_run"),
    Mutation("the benchmark's runs are not in the run cache", "hintlearn_mini/bench/recipes.py",
             "module, history = cached_fit(lambda: recipe.build(profile, teacher, train_set, student(profile)),\n"
             "                                     train_set, test_set, seed=seed, profile=profile, progress=progress,\n"
             '                                     desc=f"{recipe.name}, seed {seed}")',
             "seed_everything(seed)\n"
             "        module = recipe.build(profile, teacher, train_set, student(profile))\n"
             "        history = fit(module, train_set, test_set, seed=seed, progress=False, **fit_kwargs(profile))",
             B + "test_a_chapter_reads_the_benchmarks_runs_from_the_run_cache"),
    Mutation("the plateau redoes finished rows", "hintlearn_mini/bench/convergence.py",
             "if (profile.train_per_class, e, s) not in done]", "]",
             B + "test_plateau_trains_the_student_alone_for_each_length_and_resumes"),
    Mutation("comparisons pair the seeds by position", "hintlearn_mini/stats.py",
             "a, b = results[name], results[base]",
             "a, b = (dict(enumerate(results[k].values())) for k in (name, base))",
             "tests/test_stats.py::test_compare_pairs_only_the_seeds_both_methods_ran"),
    Mutation("compare takes lists in whatever order they come", "hintlearn_mini/stats.py",
             "if not (isinstance(a, dict) and isinstance(b, dict)):", "if False:",
             "tests/test_stats.py::test_compare_refuses_rows_by_position_and_fewer_than_two_shared_seeds"),
    Mutation("an interval that touches zero is called clear", "hintlearn_mini/stats.py",
             "    if low > 0:\n", "    if low >= 0:\n",
             "tests/test_stats.py::test_a_gain_is_clear_only_when_its_paired_interval_excludes_zero"),
    Mutation("the comparison table subtracts the wrong way", "hintlearn_mini/tables.py",
             "        c = compare(results, name, base)\n        rows.append",
             "        c = compare(results, base, name)\n        rows.append",
             "tests/test_tables.py::test_comparison_table_pairs_each_row_over_the_seeds_both_ran"),
    Mutation("run times count the mean run, not the fastest", "hintlearn_mini/tables.py",
             '"minutes per run": [min(seconds[m]) / 60 for m in methods]',
             '"minutes per run": [statistics.mean(seconds[m]) / 60 for m in methods]',
             "tests/test_tables.py::test_run_times_count_each_methods_runs_and_its_fastest_at_the_profiles_budget"),
    Mutation("fast optimization's FSP run starts from another initialisation", "hintlearn_mini/bench/fast.py",
             "recipe.stage_one(profile, teacher, copy.deepcopy(initial))", "recipe.stage_one(profile, teacher, student(profile))",
             "tests/test_bench.py::test_fast_optimization_runs_are_the_benchmarks_runs_and_resume"),
    Mutation("fast optimization redoes stage 1 for every budget", "hintlearn_mini/bench/fast.py",
             "                fsp_init = distiller.student\n", "",
             "tests/test_bench.py::test_fast_optimization_runs_are_the_benchmarks_runs_and_resume"),
    Mutation("the hint probe runs in training mode", "hintlearn_mini/probes.py",
             "    for module, _ in modes:\n        module.eval()\n", "",
             "tests/test_probes.py::test_hint_prediction_is_the_regressed_guided_layer_in_eval_mode_and_restores_modes"),
    Mutation("explained variance about zero, not the mean", "hintlearn_mini/probes.py",
             "sst = (target - target.mean(0, keepdim=True)).pow(2).sum()", "sst = target.pow(2).sum()",
             "tests/test_probes.py::test_explained_variance_of_a_copy_the_mean_and_a_hand_case"),
    Mutation("ReviewKD's ablation keeps the fusion weights", "hintlearn_mini/methods/reviewkd.py",
             "fuse=review and i < len(in_channels) - 1", "fuse=i < len(in_channels) - 1",
             "tests/test_modern_methods.py::test_reviewkd_without_review_learns_each_stage_from_its_own_stage_only"),
    Mutation("the run key forgets the views", "hintlearn_mini/runs.py",
             '"train.py", "views.py", "your_own_models.py")', '"train.py", "your_own_models.py")',
             G + "test_every_module_is_fingerprinted_unless_it_only_shows_results"),
    Mutation("a run key counts the tapping of your own models for every run", "hintlearn_mini/runs.py",
             'PER_RUN_SOURCES = ("methods", "your_own_models.py")', 'PER_RUN_SOURCES = ("methods",)',
             G + "test_every_module_is_fingerprinted_unless_it_only_shows_results"),
    Mutation("an ImageFolder reads every file", "hintlearn_mini/data.py",
             "and f.suffix.lower() in IMAGE_EXTENSIONS)", ")",
             "tests/test_data.py::test_hidden_and_non_image_files_are_skipped_as_imagefolder_does"),
    Mutation("a cut decoded cache is read as it is", "hintlearn_mini/data.py",
             "        if cached is not None:\n", "        if True:\n",
             "tests/test_data.py::test_a_cut_decoded_cache_is_rebuilt_with_one_line"),
    Mutation("train/ and test/ may hold other classes", "hintlearn_mini/data.py",
             "    if train != test:\n", "    if False:\n",
             "tests/test_data.py::test_train_and_test_must_have_the_same_classes"),
    Mutation("any image size is accepted", "hintlearn_mini/data.py",
             "            if pixels.shape[:2] != IMAGE_SIZE:", "            if False:",
             "tests/test_data.py::test_an_image_of_another_size_is_a_clear_error"),
    Mutation("a resumed benchmark keeps broken rows", "hintlearn_mini/bench/results.py",
             "        if problem is None:\n            good.append(row)", "        good.append(row)\n        if problem is None:\n            pass",
             "tests/test_bench.py::test_a_broken_results_file_is_repaired_on_resume_and_its_runs_trained_again"),
    Mutation("layer_shapes asks for names torch.fx never traced", "hintlearn_mini/your_own_models.py",
             "    names = _traced_names(names, get_graph_node_names(model)[1])\n", "",
             "tests/test_your_own_models.py::test_layer_shapes_works_at_every_depth_on_torchvision_families"),
    Mutation("an untapped model reaches forward(features=True)", "hintlearn_mini/methods/base.py",
             "        raise TypeError(untapped_message(model))", "        pass",
             "tests/test_your_own_models.py::test_a_plain_torchvision_model_in_a_feature_method_says_to_wrap_it"),
    Mutation("cache files are written in place", "hintlearn_mini/data.py",
             "        torch.save(obj, tmp)\n        tmp.replace(path)", "        torch.save(obj, path)",
             "tests/test_data.py::test_two_processes_sharing_a_cache_file_never_leave_it_broken"),
    Mutation("the gradebook's total counts the points possible", "tools/grade.py",
             '            row["total"] = sum(s for s, _ in scores.values())',
             '            row["total"] = sum(p for _, p in scores.values())',
             "tests/test_course.py::test_make_grade_writes_a_gradebook_of_a_whole_class"),
    Mutation("multiply-adds are FLOPs", "hintlearn_mini/your_own_models.py",
             "    return counter.get_total_flops() // 2", "    return counter.get_total_flops()",
             "tests/test_your_own_models.py::test_multiply_adds_of_a_hand_counted_network"),
    Mutation("the ONNX export has a fixed batch", "hintlearn_mini/your_own_models.py",
             "dynamo=True, dynamic_shapes=({0: batch},),", "dynamo=True,",
             "tests/test_your_own_models.py::test_the_onnx_export_computes_the_shipped_teacher_and_any_batch"),
    Mutation("the KD gradient check's autograd reference drops T", EX + "knowledge_distillation.py",
             "_soft_cross_entropy(z, teacher_logits, T).backward()",
             "_soft_cross_entropy(z, teacher_logits, 1.0).backward()",
             X + "test_kd_gradient_check_names_the_mistake"),
    Mutation("the KD gradient check lets autograd answer", EX + "knowledge_distillation.py",
             "        with torch.no_grad():\n            return tensor_answer(fn, args, shape,",
             "        if True:\n            return tensor_answer(fn, args, shape,",
             X + "test_kd_gradient_check_refuses_autograd_and_compares_with_logit_matching"),
    Mutation("the regressor check accepts a convolution without bias", EX + "fitnets.py",
             "    if conv.bias is None:", "    if False:",
             X + "test_hint_regressor_check_names_the_mistake"),
    Mutation("the regressor check never runs the learner's module", EX + "fitnets.py",
             "if mistake is None and not _same_output(module, reference, student_shape):",
             "if False:", X + "test_hint_regressor_check_names_the_mistake"),
    Mutation("the regressor check accepts any module for impossible shapes", EX + "fitnets.py",
             "    _check_refuses(fn, (16, 4, 4), (32, 7, 7))", "    pass",
             X + "test_hint_regressor_check_names_the_mistake"),
    Mutation("the HCL-levels reference keeps a level as large as the map", EX + "reviewkd.py",
             "if size >= fs.shape[2] and skip_large:", "if size > fs.shape[2] and skip_large:",
             X + "test_hcl_levels_check_names_the_mistake"),
    Mutation("the paper's AT reference drops the 1/2", EX + "attention_transfer.py",
             "    return beta / 2 * total", "    return beta * total",
             X + "test_proposed_replacements_of_retyped_exercises_name_the_mistake"),
    Mutation("the FSP-correlation reference forgets one norm", EX + "fsp.py",
             "a, b = F.normalize(f1.flatten(2), dim=2), F.normalize(f2.flatten(2), dim=2)",
             "a, b = F.normalize(f1.flatten(2), dim=2), f2.flatten(2)",
             X + "test_proposed_replacements_of_retyped_exercises_name_the_mistake"),
    Mutation("the masked InfoNCE reference masks the positive", EX + "crd.py",
             "        same = same & ~torch.eye(len(labels), dtype=torch.bool)", "        pass",
             X + "test_proposed_replacements_of_retyped_exercises_name_the_mistake"),
    Mutation("Kendall's tau counts ties as discordant", EX + "comparison.py",
             "    discordant = sum(x < 0 or (ties_disagree and x == 0) for x in signs)",
             "    discordant = sum(x <= 0 for x in signs)",
             X + "test_proposed_replacements_of_retyped_exercises_name_the_mistake"),
    Mutation("a mistake's tolerance turns negative with its factor", EX + "_checking.py",
             "if (answer - mistaken).norm() <= MISTAKE_RTOL * mistaken.norm():",
             "if (answer - mistaken).norm() <= MISTAKE_RTOL * factor * reference.double().norm():",
             X + "test_each_mistake_of_each_table_gets_its_own_hint"),
    Mutation("the tolerance of a mistake widened", EX + "_checking.py",
             "MISTAKE_RTOL = 1e-3", "MISTAKE_RTOL = 0.5", X + "test_each_mistake_of_each_table_gets_its_own_hint"),
    Mutation("two hints of the KD gradient's table swapped", EX + "knowledge_distillation.py",
             '            (1 / T, "off by a factor 1/T: T² from the loss times 1/T from the chain rule through z/T '
             'leaves T"),\n            (float(T), "off by a factor T:',
             '            (float(T), "off by a factor 1/T: T² from the loss times 1/T from the chain rule through z/T '
             'leaves T"),\n            (1 / T, "off by a factor T:',
             X + "test_each_mistake_of_each_table_gets_its_own_hint"),
    Mutation("an exercise check no chapter uses is exported", EX + "__init__.py",
             '__all__ = ["CheckResult",', '__all__ = ["CheckResult", "check_fsp_matrix",',
             X + "test_every_public_name_of_exercises_is_used_by_a_chapter_or_an_assignment"),
    Mutation("a rubric that does not add up to its question's points",
             "course/assignments/ch07_reviewkd/ch07_reviewkd.ipynb",
             "weighs the gain against the training cost, and says what is and is not paid at inference | 2 |",
             "weighs the gain against the training cost, and says what is and is not paid at inference | 1 |",
             C + "test_each_part_of_the_book_has_a_run_and_explain_question_with_a_rubric"),
    Mutation("a run-and-explain command names a method the benchmark lacks",
             "course/assignments/ch03_fitnets/ch03_fitnets.ipynb",
             '\\"FitNets one-stage, hint stage 3\\" \\\\', '\\"FitNets one-stage, hint stage 4\\" \\\\',
             C + "test_manual_questions_run_methods_and_options_the_benchmark_has"),
    Mutation("the answer key types a measured number", "course/answer_key.md",
             "bit for bit, so the learner's numbers can be checked",
             "bit for bit (KD gains 2.31 points), so the learner's numbers can be checked",
             C + "test_answer_key_reads_every_manual_question_without_measured_numbers"),
    Mutation("the benchmark table subtracts unpaired means", "hintlearn_mini/tables.py",
             'cells = (c.difference, f"[{c.low:+.2f}, {c.high:+.2f}]", c.verdict)',
             'cells = (statistics.mean(results[name].values()) - statistics.mean(results[base].values()),\n'
             '                 f"[{c.low:+.2f}, {c.high:+.2f}]", c.verdict)',
             "tests/test_tables.py::test_benchmark_table_pairs_each_method_with_each_baseline_over_shared_seeds"),
    Mutation("the differences plot pairs by list position", "hintlearn_mini/plots.py",
             "        c = compare(results, name, base)\n",
             "        c = compare({k: dict(enumerate(results[k].values())) for k in (name, base)}, name, base)\n",
             "tests/test_plots.py::test_plot_differences_draws_every_method_but_the_baseline_with_its_shared_seeds"),
    Mutation("the table of profiles is fingerprinted as code", "hintlearn_mini/runs.py",
             'DATA_TABLES = {"profiles.py": "PROFILES"}', "DATA_TABLES = {}",
             G + "test_editing_the_table_of_profiles_keeps_every_run_but_editing_profile_code_does_not"),
    Mutation("a chapter stored with other profile settings passes", "tests/test_stored_notebooks.py",
             '    elif record.get("profile_settings") != chapters_tool.profile_settings():',
             '    elif False:',
             "tests/test_stored_notebooks.py::test_a_stale_chapter_is_caught"),
]


def copy_tree(destination: Path) -> None:
    for name in ("hintlearn_mini", "tests", "tools", "book", "course"):
        shutil.copytree(ROOT / name, destination / name,
                        ignore=shutil.ignore_patterns("__pycache__", "_build*", ".ipynb_checkpoints"))
    for name in ("pyproject.toml",):
        shutil.copy(ROOT / name, destination / name)


def run(mutation: Mutation, scratch: Path) -> str:
    """``"caught"``, ``"SURVIVED"`` or ``"stale"``."""
    target = scratch / mutation.file
    original = target.read_text()
    if original.count(mutation.old) != 1:
        return "stale"
    target.write_text(original.replace(mutation.old, mutation.new))
    try:
        env = dict(os.environ, PYTHONPATH=str(scratch), HINTLEARN_PROFILE="quick")
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                               "-o", "addopts=", *mutation.tests.split()],
                              cwd=scratch, env=env, capture_output=True, text=True, timeout=600)
        return "caught" if done.returncode != 0 else "SURVIVED"
    finally:
        target.write_text(original)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the table only")
    parser.add_argument("--match", default="", help="only the mutations whose description contains this")
    args = parser.parse_args(argv)
    mutations = [m for m in MUTATIONS if args.match in m.what]
    if args.list:
        for m in MUTATIONS:
            print(f"{m.what:<55} {m.file:<36} {m.tests}")
        return 0
    bad = 0
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        copy_tree(scratch)
        for m in mutations:
            verdict = run(m, scratch)
            bad += verdict != "caught"
            print(f"{verdict:<9} {m.what:<55} by {m.tests.split('::')[-1]}", flush=True)
    print(f"{len(mutations) - bad} of {len(mutations)} mutations caught")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
