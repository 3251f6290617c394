"""Sweeps: a grid of ``memrl train`` runs on Ray Tune, one ordinary run directory per trial.

- :mod:`memrl.sweep.spec`: the SPEC file (TOML) and the trials it names, every option checked
  against the parser of the command it is for before anything starts.
- :mod:`memrl.sweep.trial`: a trial, its run directory, and the record (``sweep_trial.json``) that
  says whether it has finished.
- :mod:`memrl.sweep.trainable`: the Ray Tune function trainable that runs one trial in a worker.
- :mod:`memrl.sweep.runner`: the sweep itself: Ray, the Tuner, retries, resume, the summary.

Nothing here imports the ``memrl`` command: ``memrl sweep`` hands its parsers and its ``main``
in (the SPEC is checked with the same parser that ``memrl train`` uses, and each trial calls the
same ``main`` in its worker), so a trial is exactly a ``memrl train`` run. Ray is imported only
when a sweep starts.
"""
