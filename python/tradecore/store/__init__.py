"""Persistence of the trading node: SQLite in WAL mode behind a batching writer thread.

See :mod:`tradecore.store.sqlite` for the schema, the invariants (an item is atomic, items are
applied in order, nothing put is dropped) and the cost (one queue put on the hot path).
"""

from tradecore.store.sqlite import (
    SCHEMA_VERSION,
    AccountRow,
    Op,
    PositionRow,
    RiskBaselineRow,
    RiskEventRow,
    Store,
    StoreError,
    StoreFailure,
    account_op,
    account_values_op,
    cursor_op,
    fill_op,
    order_event_op,
    order_op,
    position_op,
    position_values_op,
    risk_baseline_op,
    risk_event_op,
    strategy_state_op,
)

__all__ = [
    "SCHEMA_VERSION",
    "AccountRow",
    "Op",
    "PositionRow",
    "RiskBaselineRow",
    "RiskEventRow",
    "Store",
    "StoreError",
    "StoreFailure",
    "account_op",
    "account_values_op",
    "cursor_op",
    "fill_op",
    "order_event_op",
    "order_op",
    "position_op",
    "position_values_op",
    "risk_baseline_op",
    "risk_event_op",
    "strategy_state_op",
]
