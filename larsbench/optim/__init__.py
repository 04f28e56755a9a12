"""Optimizers for large-batch training: LARC and its trust-ratio statistics."""

from larsbench.optim.larc import LARC
from larsbench.optim.trust_stats import TrustRatioStats, parameter_names

__all__ = ["LARC", "TrustRatioStats", "parameter_names"]
