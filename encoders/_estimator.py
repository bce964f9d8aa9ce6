"""What every voxel encoder shares: per-voxel and mean scores of its predictions."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from brainmodels._types import ArrayLike
from brainmodels.encoders.scoring import SCORES

__all__ = ["ScoreMixin"]


class ScoreMixin:
    """``score_voxels`` and ``score`` from ``self.predict`` and ``self.scoring``."""

    def score_voxels(self, X: ArrayLike, Y: ArrayLike) -> Any:
        """Per-voxel score (``self.scoring``: r2, correlation...) of the predictions of ``X``:
        numpy ``(voxel,)``, or a DataArray keeping ``Y``'s voxel coords (``roi``, ``i, j, k``).

        A constant voxel of ``Y`` has no defined score: NaN, with a warning naming it.
        """
        pred = self.predict(X)
        if isinstance(Y, xr.DataArray):
            return SCORES[self.scoring](Y.astype(float), pred)
        Y = np.asarray(Y, dtype=float)
        if Y.ndim == 1:  # one target: its score, as a 1-element array
            return SCORES[self.scoring](Y[:, None], np.asarray(pred)[:, None])
        return SCORES[self.scoring](Y, pred)

    def score(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """The mean over voxels of :meth:`score_voxels` (one number, as scikit-learn's
        ``GridSearchCV`` and ``cross_val_score`` need; with ``scoring="r2"`` it is
        scikit-learn's uniformly averaged R^2). Voxels without a score (constant in ``Y``,
        warned about) are left out of the mean.
        """
        if sample_weight is not None:
            raise ValueError(f"sample_weight is not supported by {type(self).__name__}.score")
        per_voxel = np.asarray(self.score_voxels(X, y), dtype=np.float64)
        defined = np.isfinite(per_voxel)
        if not defined.any():
            raise ValueError("no voxel of Y has a defined score (all are constant)")
        return float(np.mean(per_voxel[defined]))
