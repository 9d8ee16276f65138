"""The node's summary: what it processed, traded and earned, and how fast it reacted.

Owns :class:`NodeSummary` (plain data, JSON-ready through :meth:`NodeSummary.as_dict`) and its
text form (:meth:`NodeSummary.format`), printed at exit, on ``SIGUSR2`` and served by
``GET /summary``. Money is ``Decimal`` (shown exactly); latencies are integer nanoseconds.
Cost: built on demand, never on the hot path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from tradecore.telemetry.hdr import LatencySummary, format_ns

__all__ = ["AccountSummary", "NodeSummary"]


@dataclass(frozen=True)
class AccountSummary:
    """One account (one strategy) at the time of the summary."""

    account: int
    strategy: str
    positions: dict[str, int]
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    equity: Decimal
    orders: int
    fills: int
    kill_switch: bool


@dataclass(frozen=True)
class NodeSummary:
    """The figures the issue asks for at exit: messages, orders, fills, P&L, tick-to-trade."""

    name: str
    run_id: int
    source: str
    elapsed_s: float
    messages: int
    messages_by_kind: dict[str, int]
    resyncs: int
    orders: int
    risk_rejects: dict[str, int]
    broker_rejects: dict[str, int]
    cancels: int
    fills: int
    accounts: list[AccountSummary]
    tick_to_trade: LatencySummary | None
    kill_switch: dict[str, Any]
    strategy_errors: int
    store_path: str
    store_failures: int
    restored_positions: int = 0
    restored_open_orders: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (Decimal as strings)."""
        d = asdict(self)
        d["tick_to_trade"] = None if self.tick_to_trade is None else self.tick_to_trade.as_dict()
        for acc in d["accounts"]:
            for k in ("realized_pnl", "unrealized_pnl", "fees", "equity"):
                acc[k] = str(acc[k])
        return d

    def format(self) -> str:
        """The human-readable summary (a few lines)."""
        rate = self.messages / self.elapsed_s if self.elapsed_s > 0 else 0.0
        kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(self.messages_by_kind.items()))
        lines = [
            f"== tradecore trade: {self.name} (run {self.run_id}, source {self.source}) ==",
            f"messages processed: {self.messages:,} ({kinds}) in {self.elapsed_s:.3f} s "
            f"= {rate:,.0f}/s; resyncs {self.resyncs:,}",
            f"orders: {self.orders:,} sent, {sum(self.risk_rejects.values()):,} refused by risk"
            + _reasons(self.risk_rejects)
            + f", {sum(self.broker_rejects.values()):,} rejected by the broker"
            + _reasons(self.broker_rejects)
            + f"; cancels {self.cancels:,}; fills {self.fills:,}",
        ]
        for a in self.accounts:
            pos = ", ".join(f"{s} {q:+,}" for s, q in sorted(a.positions.items())) or "flat"
            lines.append(
                f"account {a.account} ({a.strategy}): orders {a.orders:,}, fills {a.fills:,}, "
                f"position {pos}; P&L realized {_money(a.realized_pnl)}, unrealized "
                f"{_money(a.unrealized_pnl)}, fees {_money(a.fees)}, equity {_money(a.equity)}"
                + (" [KILL SWITCH]" if a.kill_switch else "")
            )
        if self.tick_to_trade is None:
            lines.append("tick-to-trade: no order was sent in reaction to market data")
        else:
            t = self.tick_to_trade
            lines.append(
                f"tick-to-trade: p50 {format_ns(t.p50)}  p99 {format_ns(t.p99)}  "
                f"p99.9 {format_ns(t.p999)}  max {format_ns(t.max)}  (n={t.count:,})"
            )
        tripped = bool(self.kill_switch.get("tripped")) or any(a.kill_switch for a in self.accounts)
        lines.append(
            f"kill switch: {'TRIPPED' if tripped else 'armed'}; strategy errors "
            f"{self.strategy_errors}; store {self.store_path} (failures {self.store_failures})"
        )
        if self.restored_positions or self.restored_open_orders:
            lines.append(
                f"restored from the store: {self.restored_positions} positions, "
                f"{self.restored_open_orders} open orders"
            )
        lines.extend(self.notes)
        return "\n".join(lines)


def _reasons(counts: dict[str, int]) -> str:
    if not counts:
        return ""
    return " (" + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())) + ")"


def _money(value: Decimal) -> str:
    """Exact decimal text without trailing zeros or exponent (``-0.021``, ``0.0000002816475``)."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text
