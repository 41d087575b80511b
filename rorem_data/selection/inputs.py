"""The validated per-candidate arrays a registered strategy receives."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from rorem_data.core.errors import ConfigError
from rorem_data.selection.arrays import success_proba

__all__ = ["INPUT_HELP", "INPUT_NAMES", "SelectionInputs"]

#: The inputs a strategy may need, as ``select`` takes them.
INPUT_NAMES = ("proba", "committee", "features", "strata", "scores")

#: How to pass each input, for error messages.
INPUT_HELP = {
    "proba": "proba= (discriminator P(success), shape (n,) or (n, 2))",
    "committee": "committee= (P(success) from several discriminators, shape (n_members, n))",
    "features": "features= (one feature row per candidate, shape (n, d))",
    "strata": "strata= (a label per candidate, or several such arrays, e.g. category and origin)",
    "scores": "scores= (a precomputed need score per candidate, higher = more need)",
}


@dataclass(frozen=True)
class SelectionInputs:
    """Validated per-candidate arrays handed to a registered strategy.

    Attributes
    ----------
    n : int
        Number of candidates.
    reviewed : numpy.ndarray, shape (n,), bool
        Already judged by a human; never selected.
    proba : numpy.ndarray, shape (n,) or (n, C), float64, optional
    committee : numpy.ndarray, shape (n_members, n), float64, optional
    features : numpy.ndarray, shape (n, d), float32, optional
    strata : numpy.ndarray, shape (n,), int64 codes, optional
    scores : numpy.ndarray, shape (n,), float64, optional
    threshold : float
        The discriminator's accept threshold (a probability of success).
    """

    n: int
    reviewed: np.ndarray
    proba: np.ndarray | None = None
    committee: np.ndarray | None = None
    features: np.ndarray | None = None
    strata: np.ndarray | None = None
    scores: np.ndarray | None = None
    threshold: float = 0.5

    @property
    def n_free(self) -> int:
        """Number of unreviewed candidates."""
        return int(self.n - np.count_nonzero(self.reviewed))

    @property
    def p_success(self) -> np.ndarray:
        """P(success), shape (n,): ``proba`` itself or its column 1 (binary only)."""
        return success_proba(self.require("proba", "this strategy"))

    def require(self, name: str, strategy: str):
        """Return input ``name`` or raise a ConfigError saying that ``strategy`` needs it."""
        value = getattr(self, name)
        if value is None:
            raise ConfigError(f"strategy {strategy!r} needs {INPUT_HELP[name]}, but none was "
                              "given; pass it, or pick another strategy")
        return value

    def subset(self, positions: np.ndarray) -> SelectionInputs:
        """The same inputs restricted to ``positions`` (in that order)."""
        def take(a, axis=0):
            return None if a is None else np.take(a, positions, axis=axis)
        return replace(
            self, n=len(positions), reviewed=self.reviewed[positions],
            proba=take(self.proba), committee=take(self.committee, 1),
            features=take(self.features), strata=take(self.strata), scores=take(self.scores),
        )
