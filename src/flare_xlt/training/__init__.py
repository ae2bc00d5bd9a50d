"""Training machinery: a resumable ``accelerate`` loop and what it needs.

* :mod:`~flare_xlt.training.args`: the settings of a run (:class:`TrainArgs`,
  :class:`TrainingArguments`);
* :mod:`~flare_xlt.training.loop`: :func:`train`, the epoch/step loop;
* :mod:`~flare_xlt.training.resume`: the loop state, the result, resuming and finishing;
* :mod:`~flare_xlt.training.checkpoint`: checkpoint files, their manifest and damage checks;
* :mod:`~flare_xlt.training.sampling`: length-grouped batches;
* :mod:`~flare_xlt.training.distributed`: rank awareness outside the loop;
* :mod:`~flare_xlt.training.fit`: training and scoring a task model on features.
"""
