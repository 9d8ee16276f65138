"""Pre-trade risk: every order is checked here before it leaves the node; the kill switch.

Owns: :class:`RiskEngine` (the checks, their counters, the token buckets, the loss tracking and
the kill switch), :class:`RiskState` (the read-only view of positions, open orders, books and
equity the engine needs; the node adapts its portfolio and order manager to it),
:class:`PretradeState` (optional: a state that answers a new order's questions in one call),
:class:`RiskReason` (one code per rejection), :class:`TripCause` and :class:`RiskEvent` (what
the store and the metrics record).

Checks, in this order; the first failing one is the order's reason and its counter goes up:

1. ``UNKNOWN_SYMBOL`` (no instrument), ``INVALID_ORDER`` (qty <= 0, LIMIT price <= 0);
   ``CURRENCY_MISMATCH``: an account keeps its money in one currency, the quote currency of
   its first order that passed (or, first seen after a restart, of the positions it holds), so
   equity, loss limits and gross exposure never add two currencies; an order in a symbol
   quoted in another currency passes only if it reduces a position held in that symbol.
   Instruments whose quote currency is unknown (``quote_asset == ""``) are not subject to it.
2. Loss limits of the account (may trip the kill switch, see below).
3. ``KILL_SWITCH``: while tripped (globally or for the account) only *reducing* orders pass:
   with ``pos`` the position and ``open`` the leaves of the account's open orders on the
   order's side, a SELL passes only if ``pos > 0`` and ``qty + open <= pos``, a BUY only if
   ``pos < 0`` and ``qty + open <= -pos``. Even if every such order fills, the position moves
   toward zero and never flips. Reducing orders skip the position and exposure checks (they
   cannot grow either) but still meet every other check.
4. ``MAX_ORDER_QTY``: ``qty <= max_order_qty``.
5. ``NO_REFERENCE_PRICE`` if a check needs the book and it has no two sides;
   ``MAX_ORDER_NOTIONAL``: ``price * qty * tick * lot <= max_order_notional`` (a MARKET order
   is valued at the opposite touch).
6. ``PRICE_BAND`` (LIMIT only): ``|price - mid| / mid * 10_000 <= price_band_bps``.
7. ``MAX_POSITION``: ``|pos + open_same_side + qty| <= max_position`` for that side (worst case:
   every open order on the side fills).
8. ``MAX_GROSS_EXPOSURE``: the account's ``sum |pos_s| * mid_s`` with this symbol's position
   replaced by the worst case of 7 stays ``<= max_gross_exposure`` (an order that does not grow
   the symbol's absolute position always passes).
9. ``MAX_OPEN_ORDERS``: ``open orders + 1 <= max_open_orders``.
10. ``RATE_LIMIT``: a token bucket per account (``burst`` tokens, refilled at ``per_second``);
    checked last, so a rejected order does not spend a token. Time is the caller's ``now_ns``
    (the node clock), so a backtest is deterministic.

Kill switch: trips on ``max_daily_loss`` (equity at the first evaluation of the UTC day minus
equity now ``>= limit``) and ``max_drawdown`` (peak equity since start minus equity ``>=
limit``; a node stores both baselines and restores them on restart: :class:`LossBaseline`),
both for the account, evaluated at every check of that account (unless
``loss_check_on_order=False``, as the node runs it) and on :meth:`RiskEngine.evaluate` (all
accounts, or the ones named); an evaluation whose inputs (UTC day, equity, limits, resets)
are those of the account's last one is skipped, since it cannot change anything; on a burst
of rejects (``count`` rejects, risk's own or reported by :meth:`RiskEngine.record_reject`,
within ``window``) for the account; by command (:meth:`RiskEngine.kill`, global or one
account); from config (``kill_switch = true``, global). Tripping calls
``cancel_all(account or None)`` once and emits a :class:`RiskEvent`; only
:meth:`RiskEngine.reset` re-arms it. Cancels are never checked.

Money is exact: every limit is compiled once (at construction and on :meth:`update_limits`)
into integers in the units the check multiplies (tick-lots, or a common power of ten for
exposure), so the hot path compares integers; ``Decimal`` appears only in the loss limits
(equity comes from the state as ``Decimal``) and in reports.

Invariants: limits are swapped atomically (one reference) and only after the new set compiled;
token buckets, loss baselines and reject histories survive a reload. Single-threaded: the
node calls the engine from its event loop. The fast path's per-(account, symbol) plans are
derived data: they exist only while no rare case applies and are dropped whenever one may
start (a trip, a reload, a new instrument, a restore, a new state, a flag set), so the fast
path and the complete check always decide alike (tests/unit/test_risk_plans.py).

Cost: a passing check of a new order takes the fast path of :meth:`RiskEngine.check` (the
passing case only, in one frame; any refusal or rare case falls back to the complete check,
which decides from scratch): two dict lookups for the plan, a tuple unpack, integer
comparisons for the configured limits only, and the state calls those limits need (one
``pretrade`` call with a :class:`PretradeState`, else up to four). With the bench's limits
and the node's state that is ~220 bytecodes and ~14k instructions under callgrind, of which
the state calls are about half (bench/bench_node.py); gross exposure adds one loop over the
account's open positions. An evaluation after a fill (equity moved) is one loop iteration
with four ``Decimal`` operations, ~7k instructions; an unchanged one stops after one
comparison of equities and three of integers/identities.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Protocol

from tradecore.enums import OrderType, Side
from tradecore.execution.types import Order, OrderRequest
from tradecore.instrument import Instrument
from tradecore.risk.limits import AccountLimits, RiskLimits, SymbolLimits

__all__ = [
    "LossBaseline",
    "PretradeState",
    "RiskEngine",
    "RiskEvent",
    "RiskEventKind",
    "RiskReason",
    "RiskState",
    "TripCause",
]

DAY_NS = 86_400 * 1_000_000_000
_SECOND_NS = 1_000_000_000
# Module constants: in CPython 3.11 reading an enum member off its class costs ~150 ns.
_BUY = Side.BUY
_MARKET = OrderType.MARKET


@dataclass(frozen=True, slots=True)
class LossBaseline:
    """What an account's loss limits measure from: ``day`` (UTC days since the epoch, node
    time) and the equity at that day's first evaluation (``max_daily_loss``), and the peak
    equity seen (``max_drawdown``). :meth:`RiskEngine.baselines` gives them so a node can
    store them, :meth:`RiskEngine.restore_baselines` puts them back after a restart."""

    day: int
    day_start_equity: Decimal
    peak_equity: Decimal


class RiskReason(enum.StrEnum):
    """Why a pre-trade check refused an order."""

    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    INVALID_ORDER = "INVALID_ORDER"
    KILL_SWITCH = "KILL_SWITCH"
    MAX_ORDER_QTY = "MAX_ORDER_QTY"
    NO_REFERENCE_PRICE = "NO_REFERENCE_PRICE"
    MAX_ORDER_NOTIONAL = "MAX_ORDER_NOTIONAL"
    PRICE_BAND = "PRICE_BAND"
    MAX_POSITION = "MAX_POSITION"
    MAX_GROSS_EXPOSURE = "MAX_GROSS_EXPOSURE"
    MAX_OPEN_ORDERS = "MAX_OPEN_ORDERS"
    RATE_LIMIT = "RATE_LIMIT"


class TripCause(enum.StrEnum):
    """What tripped the kill switch."""

    MAX_DAILY_LOSS = "MAX_DAILY_LOSS"
    MAX_DRAWDOWN = "MAX_DRAWDOWN"
    REJECT_BURST = "REJECT_BURST"
    COMMAND = "COMMAND"
    CONFIG = "CONFIG"


class RiskEventKind(enum.StrEnum):
    """Kinds of :class:`RiskEvent`."""

    REJECT = "REJECT"
    KILL_SWITCH_TRIPPED = "KILL_SWITCH_TRIPPED"
    KILL_SWITCH_RESET = "KILL_SWITCH_RESET"
    LIMITS_UPDATED = "LIMITS_UPDATED"


@dataclass(frozen=True, slots=True)
class RiskEvent:
    """One thing risk did: a rejection, a trip, a reset, a reload (for the store and logs).

    ``account`` is None for node-wide events; ``reason`` is a :class:`RiskReason` value for a
    REJECT and a :class:`TripCause` value for a trip.
    """

    kind: RiskEventKind
    ts_ns: int
    account: int | None
    reason: str
    detail: str = ""
    symbol: str = ""
    client_order_id: int = 0


class RiskState(Protocol):
    """The node's state as risk reads it (positions, open orders, books, equity)."""

    def position(self, account: int, symbol: str) -> int:
        """Signed position in lots."""
        ...

    def positions(self, account: int) -> Mapping[str, int]:
        """The account's positions by symbol (zero entries may be present or absent)."""
        ...

    def open_qty(self, account: int, symbol: str, side: Side) -> int:
        """Sum of the leaves of the account's open orders in ``symbol`` on ``side``."""
        ...

    def open_order_count(self, account: int) -> int:
        """How many orders of the account are open (sent and not final)."""
        ...

    def best_bid_ask(self, symbol: str) -> tuple[int, int] | None:
        """Best bid and ask prices in ticks, or None if the book lacks a side."""
        ...

    def equity(self, account: int) -> Decimal:
        """Cash plus positions marked at the mid, net of fees, in quote currency."""
        ...


class PretradeState(RiskState, Protocol):
    """A :class:`RiskState` that also answers all of a new order's questions in one call.

    Optional: :meth:`RiskEngine.check` uses it, when the state has ``pretrade``, in place of
    the three or four calls it would make (the complete check keeps using those). Whether the
    state has it is noted when the engine makes a plan (at the first order of an account in a
    symbol, and again after anything that drops the plans, such as setting a new state).
    """

    def pretrade(
        self, account: int, symbol: str, side: Side
    ) -> tuple[int, int, int, int, int] | None:
        """``(bid, ask, position, open_qty, open_order_count)`` for an order of ``account`` in
        ``symbol`` on ``side``: exactly ``(*best_bid_ask(symbol), position(account, symbol),
        open_qty(account, symbol, side), open_order_count(account))``, or None when
        ``best_bid_ask(symbol)`` is None."""
        ...


@dataclass(slots=True)
class _SymbolRules:
    """One symbol's limits compiled to integers."""

    max_qty: int | None
    max_pos: int | None
    notional_max: int | None  # max of price * qty (tick-lots)
    band_num: int  # |2p - mid2| * 10_000 * band_den <= band_num * mid2
    band_den: int
    has_band: bool
    exposure_k: int  # |pos| * mid2 * exposure_k = 2 * value / 10**exp_e (integer)
    quote: str  # the instrument's quote currency ("" when unknown: no currency rule)


@dataclass(slots=True)
class _AccountRules:
    limits: AccountLimits
    exposure_max: int | None  # in units of 10**exp_e / 2 (see _SymbolRules.exposure_k)
    rate_gain: int  # tokens (scaled) gained per ns
    rate_cost: int  # scaled tokens per order
    rate_cap: int  # scaled bucket size
    check_losses: bool


@dataclass(slots=True)
class _AccountState:
    """What risk remembers per account across checks and reloads."""

    tokens: int = -1  # scaled; -1 = full at the first use
    tokens_ns: int = 0
    day: int | None = None
    day_start_equity: Decimal = Decimal(0)
    peak_equity: Decimal | None = None
    rejects: deque[int] | None = None
    # The inputs of the last loss evaluation (equity, rules, resets); the same again cannot
    # change anything, so it is skipped (see RiskEngine.evaluate).
    last_equity: Decimal | None = None
    last_rules: object = None
    last_resets: int = -1


@dataclass(frozen=True, slots=True)
class _Trip:
    cause: TripCause
    detail: str
    ts_ns: int


# A quantity or position limit that is not set, on the fast path: a bound no plain order
# reaches (an order beyond it only takes the complete check, which then applies no limit).
_NO_LIMIT = 1 << 62

# The fast path's view of one (account, symbol): see RiskEngine._plan.
_Plan = tuple[
    int,  # max_order_qty (or _NO_LIMIT)
    bool,  # a LIMIT order needs the book (notional, band or exposure)
    bool,  # a MARKET order needs the book (notional or exposure)
    int | None,  # notional_max (tick-lots)
    int | None,  # band: 2k, k = 10_000 * band_den (None: no band)
    int,  # band: k - band_num
    int,  # band: k + band_num
    bool,  # the position and open quantity are needed (max_position or exposure)
    int,  # max_position (or _NO_LIMIT)
    int | None,  # exposure_max
    int | None,  # max_open_orders
    "_AccountState | None",  # the account's token bucket (None: no rate limit)
    int,  # rate_cost
    int,  # rate_gain
    int,  # rate_cap
    int,  # rate_full_ns: a gap that fills the bucket whatever it held
    int,  # rate_left: cap - cost
    bool,  # one PretradeState.pretrade call gives the book, position and open orders
]


class _Compiled:
    __slots__ = ("accounts", "exp_e", "limits", "symbols")

    def __init__(self, limits: RiskLimits, instruments: Mapping[str, Instrument]) -> None:
        self.limits = limits
        # Exposure in integer units of 10**exp_e / 2: value = |pos| * mid2 / 2 * tick * lot.
        grids = {s: (i.tick_size * i.lot_size).normalize() for s, i in instruments.items()}
        exps = [int(g.as_tuple().exponent) for g in grids.values()]
        self.exp_e = min(exps, default=0)
        self.symbols: dict[str, _SymbolRules] = {
            s: self._symbol(limits.for_symbol(s), inst, grids[s]) for s, inst in instruments.items()
        }
        self.accounts: dict[int, _AccountRules] = {}

    def _symbol(self, lim: SymbolLimits, inst: Instrument, grid: Decimal) -> _SymbolRules:
        tick_lot = Fraction(inst.tick_size) * Fraction(inst.lot_size)
        notional_max = None
        if lim.max_order_notional is not None:
            notional_max = int(Fraction(lim.max_order_notional) / tick_lot)  # floor (> 0)
        band_num, band_den = (0, 1)
        if lim.price_band_bps is not None:
            band_num, band_den = lim.price_band_bps.as_integer_ratio()
        _sign, digits, exp = grid.as_tuple()
        mantissa = int("".join(map(str, digits)))
        return _SymbolRules(
            max_qty=lim.max_order_qty,
            max_pos=lim.max_position,
            notional_max=notional_max,
            band_num=band_num,
            band_den=band_den,
            has_band=lim.price_band_bps is not None,
            exposure_k=mantissa * 10 ** (int(exp) - self.exp_e),
            quote=inst.quote_asset,
        )

    def account(self, account: int) -> _AccountRules:
        rules = self.accounts.get(account)
        if rules is None:
            lim = self.limits.for_account(account)
            exposure_max = None
            if lim.max_gross_exposure is not None:
                exposure_max = int(
                    Fraction(lim.max_gross_exposure) * 2 / Fraction(10) ** self.exp_e
                )
            gain = cost = cap = 0
            if lim.rate_limit is not None:
                num, den = lim.rate_limit.per_second.as_integer_ratio()
                # Scaled tokens: one order costs den * 1e9; each ns brings num.
                gain = num
                cost = den * _SECOND_NS
                cap = lim.rate_limit.burst * cost
            rules = _AccountRules(
                limits=lim,
                exposure_max=exposure_max,
                rate_gain=gain,
                rate_cost=cost,
                rate_cap=cap,
                check_losses=lim.max_daily_loss is not None or lim.max_drawdown is not None,
            )
            self.accounts[account] = rules
        return rules


class RiskEngine:
    """Pre-trade checks with reason codes and counters, loss tracking and a kill switch.

    ``instruments``: every tradable symbol; ``state``: the node's :class:`RiskState` (one
    that is also a :class:`PretradeState` is asked once per order on the fast path);
    ``cancel_all(account)``: called once when the kill switch trips (``None`` = all
    accounts); ``on_event``: receives every :class:`RiskEvent`; ``accounts``: accounts to watch
    from the start (others are added at their first order); ``loss_check_on_order``: also
    evaluate the account's loss limits (one ``state.equity`` call) in every check. A node that
    calls :meth:`evaluate` after every fill and on a short timer may turn it off: equity then
    moves between evaluations only by marking, and the check saves the equity read.
    ``fast_check``: take the fast path of :meth:`check` (same results; see there).
    """

    def __init__(
        self,
        limits: RiskLimits,
        state: RiskState,
        instruments: Mapping[str, Instrument] | Iterable[Instrument],
        *,
        cancel_all: Callable[[int | None], object] | None = None,
        on_event: Callable[[RiskEvent], object] | None = None,
        accounts: Iterable[int] = (),
        now_ns: int = 0,
        loss_check_on_order: bool = True,
        fast_check: bool = True,
    ) -> None:
        if not isinstance(limits, RiskLimits):
            raise TypeError(f"limits must be RiskLimits, got {type(limits).__name__}")
        if isinstance(instruments, Mapping):
            insts = dict(instruments)
        else:
            insts = {i.symbol: i for i in instruments}
        for sym, inst in insts.items():
            if not isinstance(inst, Instrument) or inst.symbol != sym:
                raise TypeError(f"instruments[{sym!r}] must be the Instrument of {sym!r}")
        self._instruments = insts
        self._st = state  # read through the _state property by others
        # The fast path's plans by (account, symbol) (see check and _plan); emptied whenever
        # something a plan assumes may change.
        self._plans: dict[str, dict[int, _Plan]] = {}
        self._loss_on_order = loss_check_on_order
        self._fast_check = fast_check
        self._cancel_all = cancel_all
        self._on_event = on_event
        self._compiled = _Compiled(limits, insts)
        self._accounts: dict[int, _AccountState] = {a: _AccountState() for a in accounts}
        self._mid2: dict[str, int] = {}  # last known mid (bid + ask) per symbol
        self._global_trip: _Trip | None = None
        self._account_trips: dict[int, _Trip] = {}
        self.rejects: dict[RiskReason, int] = dict.fromkeys(RiskReason, 0)
        self.trips: dict[TripCause, int] = dict.fromkeys(TripCause, 0)
        self.passed = 0  # orders that passed (either path)
        # Checks counted by the complete check, and the passes among them: a pass of the
        # fast path only bumps ``passed`` (see ``checks``).
        self._slow_checks = 0
        self._slow_passed = 0
        self._resets = 0  # reset() calls: a re-armed switch may trip again on the same equity
        # Bumped whenever a loss baseline moves (a new day, a new peak, a restore): a caller
        # that stores baselines compares it with the value it last stored.
        self.baseline_version = 0
        # Accounts whose restored baselines were not evaluated yet: their next check evaluates
        # the loss limits first, whatever loss_check_on_order says, so no order passes on a
        # loss that was already beyond a limit before the restart.
        self._unevaluated: set[int] = set()
        # Each account's money is in one currency: the quote currency of the first order that
        # passed (or of the positions it holds when first seen after a restart).
        self._account_quote: dict[int, str] = {}
        if limits.kill_switch:
            self._trip(None, TripCause.CONFIG, "kill_switch = true in the config", now_ns)

    # --- configuration ---------------------------------------------------------------------

    @property
    def _state(self) -> RiskState:
        """The state risk reads (settable: the plans, which know what it offers, are dropped)."""
        return self._st

    @_state.setter
    def _state(self, state: RiskState) -> None:
        self._st = state
        self._plans.clear()

    @property
    def checks(self) -> int:
        """Orders checked (new orders and modifies): every check of the complete path, and
        every pass of the fast path (which counts nothing else, to save a counter)."""
        return self._slow_checks + self.passed - self._slow_passed

    @property
    def fast_check(self) -> bool:
        """Take the fast path of :meth:`check` (same results)."""
        return self._fast_check

    @fast_check.setter
    def fast_check(self, value: bool) -> None:
        self._fast_check = value
        self._plans.clear()

    @property
    def loss_check_on_order(self) -> bool:
        """Evaluate the account's loss limits in every check (see the class doc)."""
        return self._loss_on_order

    @loss_check_on_order.setter
    def loss_check_on_order(self, value: bool) -> None:
        self._loss_on_order = value
        self._plans.clear()

    @property
    def limits(self) -> RiskLimits:
        """The limits in force."""
        return self._compiled.limits

    def add_instrument(self, instrument: Instrument) -> None:
        """Make a new symbol tradable (recompiles the limits)."""
        insts = dict(self._instruments)
        insts[instrument.symbol] = instrument
        compiled = _Compiled(self._compiled.limits, insts)
        self._instruments = insts
        self._compiled = compiled
        self._plans.clear()

    def update_limits(self, new: RiskLimits, now_ns: int = 0) -> None:
        """Hot reload: compile ``new`` fully, then swap it in at once.

        Token buckets keep their tokens (capped to the new burst), loss baselines and reject
        histories stay. ``kill_switch = true`` in ``new`` trips the switch; ``false`` does not
        reset a tripped switch (only :meth:`reset` does).
        """
        if not isinstance(new, RiskLimits):
            raise TypeError(f"new limits must be RiskLimits, got {type(new).__name__}")
        compiled = _Compiled(new, self._instruments)  # raises before anything changes
        old = self._compiled
        for account, st in self._accounts.items():
            if st.tokens >= 0:
                before = old.account(account)
                after = compiled.account(account)
                if after.rate_cost and before.rate_cost:
                    st.tokens = min(st.tokens * after.rate_cost // before.rate_cost, after.rate_cap)
                else:
                    st.tokens = -1
            burst = compiled.account(account).limits.reject_burst
            if st.rejects is not None and (burst is None or st.rejects.maxlen != burst.count):
                st.rejects = None if burst is None else deque(st.rejects, maxlen=burst.count)
        self._compiled = compiled
        self._plans.clear()
        self._emit(RiskEvent(RiskEventKind.LIMITS_UPDATED, now_ns, None, "RELOAD"))
        if new.kill_switch and self._global_trip is None:
            self._trip(None, TripCause.CONFIG, "kill_switch = true in the config", now_ns)

    # --- kill switch -----------------------------------------------------------------------

    def kill(self, reason: str = "command", account: int | None = None, now_ns: int = 0) -> None:
        """Trip the kill switch by command (CLI, HTTP, signal): all accounts or one."""
        self._trip(account, TripCause.COMMAND, reason, now_ns)

    def reset(self, account: int | None = None, now_ns: int = 0) -> None:
        """Re-arm the kill switch (``None``: the global switch and every account's)."""
        self._resets += 1
        if account is None:
            was = self._global_trip is not None or bool(self._account_trips)
            self._global_trip = None
            self._account_trips.clear()
        else:
            was = self._account_trips.pop(account, None) is not None
        if was:
            self._emit(RiskEvent(RiskEventKind.KILL_SWITCH_RESET, now_ns, account, "RESET"))

    def is_tripped(self, account: int) -> bool:
        """True if orders of ``account`` are limited to reducing ones."""
        return self._global_trip is not None or account in self._account_trips

    @property
    def tripped(self) -> bool:
        """True if the global switch or any account's switch is tripped."""
        return self._global_trip is not None or bool(self._account_trips)

    def kill_switch_state(self) -> dict[str, object]:
        """The switch's state for metrics, the HTTP endpoint and the summary."""

        def one(t: _Trip | None) -> dict[str, object] | None:
            if t is None:
                return None
            return {"cause": t.cause.value, "detail": t.detail, "ts_ns": t.ts_ns}

        return {
            "tripped": self.tripped,
            "global": one(self._global_trip),
            "accounts": {a: one(t) for a, t in sorted(self._account_trips.items())},
        }

    def _trip(self, account: int | None, cause: TripCause, detail: str, now_ns: int) -> None:
        if self._global_trip is not None:
            return
        if account is not None and account in self._account_trips:
            return
        trip = _Trip(cause, detail, now_ns)
        self._plans.clear()  # only reducing orders pass now: the complete check decides
        if account is None:
            self._global_trip = trip
        else:
            self._account_trips[account] = trip
        self.trips[cause] += 1
        self._emit(RiskEvent(RiskEventKind.KILL_SWITCH_TRIPPED, now_ns, account, cause, detail))
        if self._cancel_all is not None:
            self._cancel_all(account)

    # --- loss limits and reject bursts -----------------------------------------------------

    def _account_state(self, account: int) -> _AccountState:
        st = self._accounts.get(account)
        if st is None:
            st = self._accounts[account] = _AccountState()
        return st

    def baselines(self) -> dict[int, LossBaseline]:
        """Every account's loss baselines, for accounts evaluated at least once."""
        out: dict[int, LossBaseline] = {}
        for account, st in self._accounts.items():
            if st.day is not None and st.peak_equity is not None:
                out[account] = LossBaseline(st.day, st.day_start_equity, st.peak_equity)
        return out

    def restore_baselines(self, baselines: Mapping[int, LossBaseline]) -> None:
        """Put stored baselines back (after a restart, before the first evaluation).

        The stored day's starting equity counts only while the node's clock is still in that
        UTC day (the first evaluation of a later day starts a new baseline, as always); the
        peak carries over, so a drawdown spans restarts. The next evaluation of each restored
        account runs in full, and until one has run, a check of that account's orders runs the
        loss limits first (whatever ``loss_check_on_order`` says): a loss already beyond a
        limit trips before any order passes.
        """
        for account, b in baselines.items():
            if not isinstance(b, LossBaseline):
                raise TypeError(f"baseline of account {account} must be a LossBaseline")
            st = self._account_state(account)
            st.day = b.day
            st.day_start_equity = b.day_start_equity
            st.peak_equity = b.peak_equity
            st.last_equity = None  # forces the next evaluation
            self._unevaluated.add(account)
            self._plans.clear()
        self.baseline_version += 1

    def evaluate(self, now_ns: int, accounts: Iterable[int] | None = None) -> None:
        """Evaluate the loss limits of every known account (after fills, and periodically).

        ``accounts``: only these (a caller that knows which accounts' equity moved, such as
        the node after a fill); an account not seen before becomes known.
        """
        compiled = self._compiled
        known = self._accounts
        day = now_ns // DAY_NS
        for account in list(known) if accounts is None else accounts:
            rules = compiled.accounts.get(account) or compiled.account(account)
            if not rules.check_losses:
                continue
            st = known.get(account) or self._account_state(account)
            equity = self._st.equity(account)
            # Same equity, same day, same limits, no reset since: the baselines cannot move
            # and a trip would already have happened, so there is nothing to do (the common
            # case on the risk timer: most accounts' equity did not move).
            if (
                st.last_equity == equity
                and st.day == day
                and st.last_rules is rules
                and st.last_resets == self._resets
            ):
                continue
            st.last_equity = equity
            st.last_rules = rules
            st.last_resets = self._resets
            if self._unevaluated:
                self._unevaluated.discard(account)
            # A new baseline only when the day moves forward: a clock that has not started
            # yet (an event clock reads 0 before its first event) must not replace a restored
            # day's.
            if st.day is None or day > st.day:
                st.day = day
                st.day_start_equity = equity
                self.baseline_version += 1
            peak = st.peak_equity
            if peak is None or equity > peak:
                st.peak_equity = equity
                self.baseline_version += 1
            lim = rules.limits
            limit = lim.max_daily_loss
            if limit is not None:
                loss = st.day_start_equity - equity
                if loss >= limit:
                    self._trip(
                        account,
                        TripCause.MAX_DAILY_LOSS,
                        f"daily loss {loss} >= max_daily_loss {limit}",
                        now_ns,
                    )
            limit = lim.max_drawdown
            if limit is not None:
                peak = st.peak_equity
                assert peak is not None
                dd = peak - equity
                if dd >= limit:
                    self._trip(
                        account,
                        TripCause.MAX_DRAWDOWN,
                        f"drawdown {dd} from peak {peak} >= max_drawdown {limit}",
                        now_ns,
                    )

    _evaluate = evaluate  # what the checks call (a wrapper set on an instance stays out)

    def record_reject(self, account: int, now_ns: int, reason: str = "") -> None:
        """Count a rejection reported by the venue or broker toward the reject burst."""
        self._count_reject(account, self._compiled.account(account), now_ns, reason)

    def _count_reject(self, account: int, rules: _AccountRules, now_ns: int, why: str) -> None:
        burst = rules.limits.reject_burst
        if burst is None:
            return
        st = self._account_state(account)
        times = st.rejects
        if times is None or times.maxlen != burst.count:
            times = st.rejects = deque(maxlen=burst.count)
        times.append(now_ns)
        if len(times) == burst.count and times[-1] - times[0] <= burst.window_ns:
            self._trip(
                account,
                TripCause.REJECT_BURST,
                f"{burst.count} rejects within {burst.window_ns} ns (last: {why})",
                now_ns,
            )

    # --- the checks ------------------------------------------------------------------------

    def check(self, request: OrderRequest, now_ns: int) -> RiskReason | None:
        """Check a new order; None if it may be sent, else the reason (already counted).

        Fast path: the passing case of :meth:`_check` for a new order, with the same
        arithmetic, from the *plan* of the order's (account, symbol): its limits compiled into
        one tuple (:meth:`_plan`), made only while nothing rare applies (a known symbol, no
        loss check per order, no unevaluated restored baseline, the account's currency
        settled, no tripped switch, a started token bucket) and dropped whenever one of those
        may change (a trip, a reload, a new instrument, a restore, ``fast_check`` or
        ``loss_check_on_order`` set). Only the limits configured are looked at, and the state
        is asked only what they need. Any refusal or unusual order (not a plain ``int``,
        ``qty <= 0``, a quantity beyond 2**62, ...) goes to :meth:`_check`, which decides from
        scratch. Nothing changes before the order is known to pass (only the mid cache, which
        ``_check`` sets to the same value), so the fallback sees what the fast path saw.
        ``fast_check=False`` turns it off (tests compare the two on random input).
        """
        account = request.account
        symbol = request.symbol
        try:
            plan = self._plans[symbol][account]  # two exact-dict lookups, no key tuple
        except KeyError:
            made = self._plan(account, symbol)
            if made is None:
                return self._slow(request, now_ns)
            plan = made
        (
            max_qty,
            book_limit,
            book_market,
            notional_max,
            band_a,
            band_lo,
            band_hi,
            sizing,
            max_pos,
            exposure_max,
            max_open,
            bucket,
            rate_cost,
            rate_gain,
            rate_cap,
            rate_full_ns,
            rate_left,
            one_call,
        ) = plan
        qty = request.qty
        price = request.price
        if type(qty) is not int or type(price) is not int or not 0 < qty <= max_qty:
            return self._slow(request, now_ns)
        market = request.order_type is _MARKET
        if not market:
            if price <= 0:
                return self._slow(request, now_ns)
            need_book = book_limit
        else:
            need_book = book_market
        side = request.side
        state = self._st
        if one_call:
            got = state.pretrade(account, symbol, side)  # type: ignore[attr-defined]
            if got is None:
                return self._slow(request, now_ns)
            bid, ask, pos, open_same, count = got
        mid2 = 0
        if need_book:
            if not one_call:
                bba = state.best_bid_ask(symbol)
                if bba is None:
                    return self._slow(request, now_ns)
                bid, ask = bba
            mid2 = bid + ask
            self._mid2[symbol] = mid2
            if notional_max is not None and (
                (price if not market else (ask if side is _BUY else bid)) * qty > notional_max
            ):
                return self._slow(request, now_ns)
            # The band |2 * price - mid2| * 10_000 * den <= num * mid2, with no abs():
            # mid2 * (k - num) <= price * 2k <= mid2 * (k + num) for k = 10_000 * den.
            if (
                band_a is not None
                and not market
                and not (mid2 * band_lo <= price * band_a <= mid2 * band_hi)
            ):
                return self._slow(request, now_ns)
        if sizing:
            if not one_call:
                open_same = state.open_qty(account, symbol, side)
                pos = state.position(account, symbol)
            after = pos + open_same + qty if side is _BUY else pos - open_same - qty
            if after > max_pos or -after > max_pos:
                return self._slow(request, now_ns)
            if (
                exposure_max is not None
                and abs(after) > abs(pos)
                and self._exposure(
                    account,
                    symbol,
                    after,
                    mid2,
                    self._compiled.symbols[symbol],
                    self._compiled.accounts[account],
                )
                is not None
            ):
                return self._slow(request, now_ns)
        if (
            max_open is not None
            and (count if one_call else state.open_order_count(account)) >= max_open
        ):
            return self._slow(request, now_ns)
        if bucket is not None:
            # The bucket was started (tokens >= 0) when the plan was made and stays so; a
            # full bucket keeps rate_left = cap - cost (>= 0: burst >= 1) after the order.
            gap = now_ns - bucket.tokens_ns
            if gap >= rate_full_ns:  # full again, whatever it held (implies gap > 0)
                bucket.tokens = rate_left
                bucket.tokens_ns = now_ns
            elif gap > 0:
                tokens = bucket.tokens + gap * rate_gain
                if tokens >= rate_cap:
                    bucket.tokens = rate_left
                elif tokens < rate_cost:
                    return self._slow(request, now_ns)
                else:
                    bucket.tokens = tokens - rate_cost
                bucket.tokens_ns = now_ns
            else:
                tokens = bucket.tokens
                if tokens < rate_cost:
                    return self._slow(request, now_ns)
                bucket.tokens = tokens - rate_cost
        self.passed += 1  # ``checks`` counts it too (see there)
        return None

    def _plan(self, account: int, symbol: str) -> _Plan | None:
        """The fast path's compiled limits of (account, symbol) for ``_plans``; None (the
        complete check decides) while something rare applies (see :meth:`check`)."""
        compiled = self._compiled
        sym = compiled.symbols.get(symbol)
        if (
            sym is None
            or not self._fast_check
            or self._unevaluated
            or self._global_trip is not None
            or account in self._account_trips
            or (sym.quote and self._account_quote.get(account) != sym.quote)
        ):
            return None
        rules = compiled.account(account)
        if rules.check_losses and self._loss_on_order:
            return None
        bucket = None
        if rules.rate_cost:
            # The account's bucket, once started by a check that passed (tokens -1 = "full
            # at the first use" only before that, and after a reload, which drops the plans).
            bucket = self._accounts.get(account)
            if bucket is None or bucket.tokens < 0 or rules.rate_gain <= 0:
                return None
        exposure_max = rules.exposure_max
        notional_max = sym.notional_max
        k = 10_000 * sym.band_den
        reads = (
            notional_max is not None
            or sym.has_band
            or exposure_max is not None
            or sym.max_pos is not None
            or rules.limits.max_open_orders is not None
        )
        plan: _Plan = (
            _NO_LIMIT if sym.max_qty is None else sym.max_qty,
            notional_max is not None or sym.has_band or exposure_max is not None,
            notional_max is not None or exposure_max is not None,
            notional_max,
            2 * k if sym.has_band else None,
            k - sym.band_num,
            k + sym.band_num,
            sym.max_pos is not None or exposure_max is not None,
            _NO_LIMIT if sym.max_pos is None else sym.max_pos,
            exposure_max,
            rules.limits.max_open_orders,
            bucket,
            rules.rate_cost,
            rules.rate_gain,
            rules.rate_cap,
            # The time that fills the bucket from empty: ceil(cap / gain) (gain >= 1).
            -(-rules.rate_cap // rules.rate_gain) if bucket is not None else 0,
            rules.rate_cap - rules.rate_cost,
            reads and hasattr(self._st, "pretrade"),
        )
        self._plans.setdefault(symbol, {})[account] = plan
        return plan

    def _slow(self, request: OrderRequest, now_ns: int) -> RiskReason | None:
        """The complete check of a new order (the fast path's fallback)."""
        return self._check(
            request.account,
            request.symbol,
            request.side,
            request.qty,
            request.price,
            request.order_type is _MARKET,
            now_ns,
            0,
            True,
            request.client_order_id,
        )

    def check_modify(
        self, order: Order, new_price: int, new_qty: int, now_ns: int
    ) -> RiskReason | None:
        """Check a cancel/replace of ``order`` to ``new_price`` and remaining ``new_qty``.

        The order's current leaves are taken out of the open quantity, and it does not count
        as a new open order.
        """
        req = order.request
        return self._check(
            req.account,
            req.symbol,
            req.side,
            new_qty,
            new_price,
            req.order_type is _MARKET,
            now_ns,
            order.leaves if order.is_open else 0,
            False,
            req.client_order_id,
        )

    def _reject(
        self,
        reason: RiskReason,
        account: int,
        rules: _AccountRules | None,
        symbol: str,
        coid: int,
        now_ns: int,
        detail: str,
    ) -> RiskReason:
        self.rejects[reason] += 1
        if self._on_event is not None:
            self._emit(
                RiskEvent(RiskEventKind.REJECT, now_ns, account, reason, detail, symbol, coid)
            )
        if rules is not None and reason is not RiskReason.KILL_SWITCH:
            self._count_reject(account, rules, now_ns, reason)
        return reason

    def _check(
        self,
        account: int,
        symbol: str,
        side: Side,
        qty: int,
        price: int,
        market: bool,
        now_ns: int,
        replaced_leaves: int,
        new_order: bool,
        coid: int,
    ) -> RiskReason | None:
        self._slow_checks += 1
        compiled = self._compiled
        sym = compiled.symbols.get(symbol)
        if sym is None:
            return self._reject(
                RiskReason.UNKNOWN_SYMBOL, account, None, symbol, coid, now_ns, "no instrument"
            )
        if (
            (type(qty) is not int and (isinstance(qty, bool) or not isinstance(qty, int)))
            or qty <= 0
            or (type(price) is not int and not isinstance(price, int))
            or (not market and price <= 0)
        ):
            return self._reject(
                RiskReason.INVALID_ORDER,
                account,
                None,
                symbol,
                coid,
                now_ns,
                f"qty {qty!r}, price {price!r}",
            )
        rules = compiled.accounts.get(account) or compiled.account(account)
        quote = sym.quote
        if quote:
            have = self._account_quote.get(account)
            if have is None:
                have = self._held_quote(account)
            if have is not None and have != quote:
                # Only an order that reduces a position already held in this symbol passes.
                pos = self._st.position(account, symbol)
                if not ((pos < 0 and qty <= -pos) if side is _BUY else (pos > 0 and qty <= pos)):
                    return self._reject(
                        RiskReason.CURRENCY_MISMATCH,
                        account,
                        rules,
                        symbol,
                        coid,
                        now_ns,
                        f"account {account} keeps its money in {have}; {symbol} is quoted in "
                        f"{quote}",
                    )
        if rules.check_losses and (
            self._loss_on_order or (self._unevaluated and account in self._unevaluated)
        ):
            self._unevaluated.discard(account)
            self._evaluate(now_ns, (account,))  # finds the same rules
        state = self._st
        buy = side is _BUY
        reducing_only = self._global_trip is not None or (
            bool(self._account_trips) and account in self._account_trips
        )
        open_same = 0
        if reducing_only:
            open_same = state.open_qty(account, symbol, side) - replaced_leaves
            pos = state.position(account, symbol)
            if not (
                (pos < 0 and qty + open_same <= -pos)
                if buy
                else (pos > 0 and qty + open_same <= pos)
            ):
                return self._reject(
                    RiskReason.KILL_SWITCH,
                    account,
                    rules,
                    symbol,
                    coid,
                    now_ns,
                    f"kill switch tripped: only reducing orders (position {pos}, "
                    f"open {open_same} on {side}, order {qty})",
                )
        if sym.max_qty is not None and qty > sym.max_qty:
            return self._reject(
                RiskReason.MAX_ORDER_QTY,
                account,
                rules,
                symbol,
                coid,
                now_ns,
                f"qty {qty} > max_order_qty {sym.max_qty}",
            )
        need_book = (
            sym.notional_max is not None
            or (sym.has_band and not market)
            or (rules.exposure_max is not None and not reducing_only)
        )
        bid = ask = mid2 = 0
        if need_book:
            bba = state.best_bid_ask(symbol)
            if bba is None:
                return self._reject(
                    RiskReason.NO_REFERENCE_PRICE,
                    account,
                    rules,
                    symbol,
                    coid,
                    now_ns,
                    "the book has no bid or no ask",
                )
            bid, ask = bba
            mid2 = bid + ask
            self._mid2[symbol] = mid2
        if sym.notional_max is not None:
            ref = price if not market else (ask if buy else bid)
            if ref * qty > sym.notional_max:
                return self._reject(
                    RiskReason.MAX_ORDER_NOTIONAL,
                    account,
                    rules,
                    symbol,
                    coid,
                    now_ns,
                    f"price {ref} x qty {qty} = {ref * qty} tick-lots > "
                    f"{sym.notional_max} (max_order_notional)",
                )
        if sym.has_band and not market:
            dist = 2 * price - mid2
            if dist < 0:
                dist = -dist
            if dist * 10_000 * sym.band_den > sym.band_num * mid2:
                return self._reject(
                    RiskReason.PRICE_BAND,
                    account,
                    rules,
                    symbol,
                    coid,
                    now_ns,
                    f"price {price} is {dist * 5_000 / mid2:.1f} bps from mid {mid2 / 2} "
                    f"(band {Fraction(sym.band_num, sym.band_den)} bps)",
                )
        if not reducing_only and (sym.max_pos is not None or rules.exposure_max is not None):
            open_same = state.open_qty(account, symbol, side) - replaced_leaves
            pos = state.position(account, symbol)
            after = pos + open_same + qty if buy else pos - open_same - qty
            if sym.max_pos is not None and (after > sym.max_pos or -after > sym.max_pos):
                return self._reject(
                    RiskReason.MAX_POSITION,
                    account,
                    rules,
                    symbol,
                    coid,
                    now_ns,
                    f"position {pos} with open {open_same} and order {qty} on {side} -> {after}, "
                    f"beyond max_position {sym.max_pos}",
                )
            if rules.exposure_max is not None and abs(after) > abs(pos):
                reason = self._exposure(account, symbol, after, mid2, sym, rules)
                if reason is not None:
                    return self._reject(
                        reason, account, rules, symbol, coid, now_ns, "gross exposure"
                    )
        lim = rules.limits
        if (
            new_order
            and lim.max_open_orders is not None
            and state.open_order_count(account) >= lim.max_open_orders
        ):
            return self._reject(
                RiskReason.MAX_OPEN_ORDERS,
                account,
                rules,
                symbol,
                coid,
                now_ns,
                f"{state.open_order_count(account)} open orders, max_open_orders "
                f"{lim.max_open_orders}",
            )
        if rules.rate_cost:
            st = self._accounts.get(account) or self._account_state(account)
            tokens = st.tokens
            if tokens < 0:
                tokens = rules.rate_cap
            elif now_ns > st.tokens_ns:
                tokens += (now_ns - st.tokens_ns) * rules.rate_gain
                if tokens > rules.rate_cap:
                    tokens = rules.rate_cap
            if now_ns > st.tokens_ns:
                st.tokens_ns = now_ns
            if tokens < rules.rate_cost:
                st.tokens = tokens
                return self._reject(
                    RiskReason.RATE_LIMIT,
                    account,
                    rules,
                    symbol,
                    coid,
                    now_ns,
                    f"token bucket empty ({lim.rate_limit})",
                )
            st.tokens = tokens - rules.rate_cost
        if quote and account not in self._account_quote:
            self._account_quote[account] = quote
        self.passed += 1
        self._slow_passed += 1
        return None

    def _held_quote(self, account: int) -> str | None:
        """The one quote currency of the account's open positions (None if it holds none, or
        positions in several currencies, which this engine does not create)."""
        symbols = self._compiled.symbols
        quotes = {
            r.quote
            for s, q in self._st.positions(account).items()
            if q and (r := symbols.get(s)) is not None and r.quote
        }
        if len(quotes) != 1:
            return None
        (only,) = quotes
        self._account_quote[account] = only
        return only

    def _exposure(
        self,
        account: int,
        symbol: str,
        after: int,
        mid2: int,
        sym: _SymbolRules,
        rules: _AccountRules,
    ) -> RiskReason | None:
        compiled = self._compiled
        total = abs(after) * mid2 * sym.exposure_k
        for other, pos in self._st.positions(account).items():
            if other == symbol or pos == 0:
                continue
            rules_o = compiled.symbols.get(other)
            if rules_o is None:
                return RiskReason.UNKNOWN_SYMBOL
            bba = self._st.best_bid_ask(other)
            if bba is not None:
                m2 = bba[0] + bba[1]
                self._mid2[other] = m2
            else:
                m2 = self._mid2.get(other, 0)
                if not m2:
                    return RiskReason.NO_REFERENCE_PRICE
            total += abs(pos) * m2 * rules_o.exposure_k
        assert rules.exposure_max is not None
        if total > rules.exposure_max:
            return RiskReason.MAX_GROSS_EXPOSURE
        return None

    def gross_exposure(self, account: int) -> Decimal:
        """The account's gross exposure (sum of |position| * mid), for reports."""
        compiled = self._compiled
        total = 0
        for symbol, pos in self._st.positions(account).items():
            rules = compiled.symbols.get(symbol)
            if rules is None or pos == 0:
                continue
            bba = self._st.best_bid_ask(symbol)
            m2 = bba[0] + bba[1] if bba is not None else self._mid2.get(symbol, 0)
            total += abs(pos) * m2 * rules.exposure_k
        return Decimal(total) * Decimal(10) ** compiled.exp_e / 2

    def _emit(self, event: RiskEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def stats(self) -> dict[str, object]:
        """Counters for metrics and the summary."""
        return {
            "checks": self.checks,
            "passed": self.passed,
            "rejects": {r.value: n for r, n in self.rejects.items()},
            "trips": {c.value: n for c, n in self.trips.items()},
            "kill_switch": self.kill_switch_state(),
        }
