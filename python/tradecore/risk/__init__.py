"""Pre-trade risk: limits, checks with reason codes and counters, and the kill switch.

``RiskEngine.check(request, now_ns)`` returns None (send it) or a ``RiskReason``; limits are
``RiskLimits`` (``RiskLimits.from_config(toml["risk"])``), hot-reloadable with
``update_limits``. The engine reads the node's state through the ``RiskState`` protocol.
"""

from tradecore.risk.engine import (
    LossBaseline,
    PretradeState,
    RiskEngine,
    RiskEvent,
    RiskEventKind,
    RiskReason,
    RiskState,
    TripCause,
)
from tradecore.risk.limits import AccountLimits, RateLimit, RejectBurst, RiskLimits, SymbolLimits

__all__ = [
    "AccountLimits",
    "LossBaseline",
    "PretradeState",
    "RateLimit",
    "RejectBurst",
    "RiskEngine",
    "RiskEvent",
    "RiskEventKind",
    "RiskLimits",
    "RiskReason",
    "RiskState",
    "SymbolLimits",
    "TripCause",
]
