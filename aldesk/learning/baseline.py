"""Random sampling: the baseline every other strategy must beat. Never trains a model."""

from __future__ import annotations

import numpy as np

from aldesk.learning.base import BaseStrategy, QueryInput, make_result


class RandomStrategy(BaseStrategy):
    """b candidates drawn uniformly without replacement."""

    name = "random"

    def _query(self, data: QueryInput, model):
        picks = data.rng.choice(data.candidates, data.batch_size, replace=False)
        reasons = ["random pick (the baseline that shows what the other strategies gain)"] * len(picks)
        return make_result(self.name, picks, np.zeros(len(picks)), reasons)
