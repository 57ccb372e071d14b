"""Studies: many runs compared, and what their records say.

- :mod:`~izkit.studies.compare`: ``izkit compare``, every (task, seed) in turn, its table and figure;
- :mod:`~izkit.studies.fanout`: the same pairs as Ray tasks (``--ray``);
- :mod:`~izkit.studies.study`: finished runs read back, archived and restored; paired statistics;
- :mod:`~izkit.studies.study_report`: ``izkit summary``'s report and figures;
- :mod:`~izkit.studies.winner`: how each method's kept instruction was chosen, read from the archived studies;
- :mod:`~izkit.studies.curse`, :mod:`~izkit.studies.allocation`: the winner's curse and the allocation of answers,
  simulated, with their explorers (notebook 9).
"""
