"""The notebooks' interactive explorers (ipywidgets 8 + matplotlib), in one place to import from.

- :func:`soft_prompt_explorer` (:mod:`izkit.course.soft_prompt_explorer`): move a soft prompt z around the best one of a
  recorded run and read the run's GP (eq. 9) there; buttons generate (paper step 2) and score (step 3) at z.
- :func:`kernel_explorer`, :func:`ei_explorer` (:mod:`izkit.course.gp_explorers`): a 1-D GP's hyperparameters against its log
  marginal likelihood, and expected improvement (paper eq. 10) against the incumbent and ``xi``.
- :func:`eq9_explorer` (:mod:`izkit.course.gp_explorers`): the instruction-coupled kernel (paper eq. 9) in one dimension, its
  prior and posterior against the latent lengthscale, S's lengthscale and the noise (notebook 5).
- :func:`walk_explorer`, :func:`instruction_box` (:mod:`izkit.course.text_explorers`): a straight walk in z and the
  instructions it writes (notebook 2); an instruction typed in and its scores on the dev examples (notebook 3).
- :func:`curse_explorer` (:mod:`izkit.studies.curse`), :func:`halving_explorer` (:mod:`izkit.studies.allocation`): the winner's curse
  against candidates and examples; successive halving's allocation of the answers allowed (notebook 9).

Each returns an :class:`izkit.course.explorer.Explorer`, drivable headless: set a slider's ``.value`` or ``.click()`` a button,
then read ``.state``. Slow work (generation, scoring) runs only on a click.
"""

from izkit.course.explorer import Explorer
from izkit.course.gp_explorers import ei_explorer, eq9_explorer, kernel_explorer, toy_1d, toy_eq9
from izkit.course.soft_prompt_explorer import ReplayModels, plane_directions, projected_scores, soft_prompt_explorer
from izkit.course.text_explorers import instruction_box, walk_explorer
from izkit.studies.allocation import halving_explorer
from izkit.studies.curse import curse_explorer

__all__ = ["Explorer", "ReplayModels", "curse_explorer", "ei_explorer", "eq9_explorer", "halving_explorer",
           "instruction_box", "kernel_explorer", "plane_directions", "projected_scores", "soft_prompt_explorer",
           "toy_1d", "toy_eq9", "walk_explorer"]
