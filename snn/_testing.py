"""The internals that the test suite inspects, in one place (not public API).

Tests reach kernels, plans and trace counters through this module, so a refactor of the
library moves one import here instead of every test.
"""

from brainmodels.snn._delivery import Delivery, _first_spikes, _tiers
from brainmodels.snn._engine import build_plan
from brainmodels.snn.train import _TRACE_COUNTS as TRACE_COUNTS

__all__ = ["Delivery", "first_spikes", "tiers", "build_plan", "plans_of", "TRACE_COUNTS"]

first_spikes = _first_spikes
tiers = _tiers


def plans_of(net) -> dict:
    """The compiled plans cached on a network object (empty before its first run)."""
    return net.__dict__.get("_plans", {})
