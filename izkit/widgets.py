"""The notebooks' interactive explorers (ipywidgets 8 + matplotlib), in one place to import from.

- :func:`soft_prompt_explorer` (:mod:`izkit.soft_prompt_explorer`): move a soft prompt z around the best one of a
  recorded run and read the run's GP (eq. 9) there; buttons generate (paper step 2) and score (step 3) at z.
- :func:`kernel_explorer`, :func:`ei_explorer` (:mod:`izkit.gp_explorers`): a 1-D GP's hyperparameters against its log
  marginal likelihood, and expected improvement (paper eq. 10) against the incumbent and ``xi``.

Each returns an :class:`izkit.explorer.Explorer`, drivable headless: set a slider's ``.value`` or ``.click()`` a button,
then read ``.state``. Slow work (generation, scoring) runs only on a click.
"""

from izkit.explorer import Explorer
from izkit.gp_explorers import ei_explorer, kernel_explorer, toy_1d
from izkit.soft_prompt_explorer import ReplayModels, plane_directions, projected_scores, soft_prompt_explorer

__all__ = ["Explorer", "ReplayModels", "ei_explorer", "kernel_explorer", "plane_directions", "projected_scores",
           "soft_prompt_explorer", "toy_1d"]
