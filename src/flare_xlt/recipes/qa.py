"""Question answering for every method: featurization, batching, loss and prediction.

:class:`QAFeaturizer` turns :class:`~flare_xlt.tasks.QAExample` into features (padded
by :class:`~flare_xlt.recipes.features.Collator`, as for every task), and
:class:`QAScorer` gives the training loss and
the predicted answer strings, scored with ``compute_metric("squad", ...)``
(:attr:`QAScorer.metric_key` is the primary number, exact match).
"""

from flare_xlt.recipes.qa_features import QAFeaturizer
from flare_xlt.recipes.qa_scoring import QAScorer

__all__ = ["QAFeaturizer", "QAScorer"]
