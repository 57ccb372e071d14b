"""Friendly checks for the assignments: a student's function against izkit's reference, with hints in plain words.

Each check calls the student's function on seeded random inputs and on the edge cases that catch the usual slips,
then prints one success line or raises :class:`CheckFailed` (an ``AssertionError``) naming the slip: a wrong shape, a
transposed result, a constant factor, NaN at r = 0, -inf in log-EI's tail... A stub that still raises
``NotImplementedError`` gets its own message. One module per assignment:

- a1 :func:`check_matern52` (:mod:`izkit.course.checks.matern`): the Matern-5/2 kernel, R&W eq. 4.17;
- a2 :func:`check_score_similarity`, :func:`check_coupled_kernel` (:mod:`izkit.course.checks.coupled_kernel`): S from score
  vectors (the authors' code) and the instruction-coupled kernel, paper eq. 9;
- a3 :func:`check_ei`, :func:`check_log_ei` (:mod:`izkit.course.checks.expected_improvement`): EI, paper eq. 10, and log-EI;
- a4 :func:`check_gp_posterior`, :func:`check_bo_step` (:mod:`izkit.course.checks.bo_step`): a GP posterior for any kernel,
  and one BO step on the student's own Matern, eq. 9 kernel and EI, every member of its batch judged by a reference
  posterior's EI;
- a5 :func:`check_best_test_score`, :func:`check_bo_vs_random` (:mod:`izkit.course.checks.bo_vs_random`): is BO better than
  random search? Pick on dev, pair by (task, seed), any valid two-sided paired test, as many distinct instructions
  each.
- a6 :func:`check_halving_rungs`, :func:`check_answers_spent`, :func:`check_most_candidates`, :func:`check_promote`,
  :func:`check_successive_halving` (:mod:`izkit.course.checks.successive_halving`, the loop in
  :mod:`izkit.course.checks.halving_loop`): successive halving with a fixed number of
  answers allowed, against :mod:`izkit.selection`. Paired rungs, new examples paid once, the schedule within the
  answers allowed, the
  pick from the last rung (how equal means are ordered is a convention, not graded).

Every check refuses izkit's own implementation of what it checks (:func:`izkit.course.checks.common.refuse_izkit`), takes
``seed=`` for the graders' hidden cases (seed 0 is what the student sees), and is an nbgrader test: it passes
silently but for one line, or raises.
"""

from izkit.course.checks.bo_step import check_bo_step, check_gp_posterior
from izkit.course.checks.bo_vs_random import check_best_test_score, check_bo_vs_random
from izkit.course.checks.common import CheckFailed
from izkit.course.checks.coupled_kernel import check_coupled_kernel, check_score_similarity
from izkit.course.checks.expected_improvement import check_ei, check_log_ei
from izkit.course.checks.matern import check_matern52
from izkit.course.checks.halving_loop import check_successive_halving
from izkit.course.checks.successive_halving import (check_answers_spent, check_halving_rungs, check_most_candidates,
                                             check_promote)

__all__ = ["CheckFailed", "check_answers_spent", "check_best_test_score", "check_bo_step", "check_bo_vs_random",
           "check_gp_posterior",
           "check_coupled_kernel", "check_ei", "check_halving_rungs", "check_log_ei", "check_matern52",
           "check_most_candidates", "check_promote", "check_score_similarity", "check_successive_halving"]
