#!/usr/bin/env python3
"""Peer comparison: our ``OrderBook`` against nautilus_trader's L3 ``OrderBook`` on one L3 stream.

Run: ``make peer`` (or ``.venv/bin/python bench/peer_nautilus.py [--ops N] [--repeats R]``).

What it does, in one run:

1. Environment. nautilus_trader lives in its own venv, ``.venv-nautilus`` at the repository root
   (git-ignored), so its pins (numpy, pyarrow, pandas, ...) never touch the project's venv. If that
   venv or the package is missing, this script creates it (``python -m venv``, then
   ``pip install nautilus_trader==<pinned> numpy hdrhistogram``) and re-executes itself with that
   venv's interpreter. Our package is *not* reinstalled there: a ``.pth`` file in that venv's
   site-packages points at the repository's ``python/`` directory, where ``make build``
   (``maturin develop``) leaves the compiled ``tradecore/_core*.so``. Both venvs use the same
   CPython and the extension is built for the stable ABI, so the peer run loads exactly the binary
   the project just built: no second Rust build, no copy that can go stale. The child checks that
   ``tradecore`` came from this repository and says ``run make build`` if the extension is absent.
2. Stream. ``streams.l3_stream``: one fixed-seed L3 maintenance stream (50% adds, 35% deletes, 15%
   size reductions of resting orders; adds never cross, so neither engine matches anything and
   both do pure book maintenance), about 150,000 resting orders at the end for 1,000,000 ops.
3. Inputs, built before any clock starts: nautilus ``OrderBookDelta`` objects (each with its
   ``BookOrder``, ``Price``, ``Quantity``), our ``OP_DTYPE`` numpy array, and our per-call argument
   tuples. Only the book operations are timed, on both sides; the cyclic GC is off while timing.
4. Timing, ``--repeats`` rounds, engines in rotating order within each round, each on a fresh
   book: (a) nautilus ``OrderBook.apply_delta`` (``BookType.L3_MBO``) once per op, (b) our
   ``OrderBook.submit`` / ``cancel`` / ``modify`` once per op, (c) our ``OrderBook.process`` on the
   whole array in one call, (d) the same in calls of 65,536 rows (slices built before timing; a
   single call over a million rows pays page faults for its fresh buffers, slices reuse memory).
   ``--warmup`` untimed rounds of every engine come first (default 1). On this project's VM that
   matters: memory the guest has not touched since boot costs about 2.7 s of kernel time per GB
   the first time it is faulted in (measured: filling a fresh 6 GiB numpy array took 16 s of
   system time, and afterwards the same fills were ordinary), and a fresh book plus a 56 MB
   huge-page events array land on such memory in early rounds: one-call rounds then spent 140 ms
   of their 230 ms in the kernel. Each run's kernel CPU time (``getrusage``) is printed and kept
   in the results, so a round that paid for fresh memory shows as such.
   Throughput is ops / median wall time. Then one more pass per engine with ``perf_counter_ns``
   around every call gives per-call latency percentiles (HdrHistogram).
5. Verification: at the end, our three books must agree with nautilus' book on the number of
   resting orders, best bid and ask (price, size) and the top ``--depth`` levels (price, size,
   order count); the full L3 content (order ids and sizes, level by level, in queue order) is
   compared too. Each batch must yield exactly one event per op: ACCEPTED / CANCELLED / REPLACED
   per add / delete / update.
   Any disagreement fails the run (exit status 1).

Results: a table on stdout and ``bench/results/peer_nautilus.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

REPO = Path(__file__).resolve().parent.parent
PEER_VENV = REPO / ".venv-nautilus"
NAUTILUS_SPEC = "nautilus_trader==1.221.0"
PEER_DEPS = ("numpy>=1.26", "hdrhistogram>=0.10")
DEFAULT_JSON = REPO / "bench" / "results" / "peer_nautilus.json"
TARGET_PER_CALL = 3.0
TARGET_BATCH = 10.0
CHUNK_ROWS = 65_536
_CHILD_FLAG = "TRADECORE_PEER_CHILD"

Table = list[tuple[int, int, int]]


# ----------------------------------------------------------------------------- environment


def _venv_python() -> Path:
    return PEER_VENV / "bin" / "python"


def _in_peer_venv() -> bool:
    return Path(sys.prefix).resolve() == PEER_VENV.resolve()


def _run(cmd: Sequence[str | Path]) -> None:
    print("+ " + " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True)


def _bootstrap(argv: Sequence[str], nautilus_spec: str) -> NoReturn:
    """Create/complete the peer venv if needed, then re-execute this script inside it."""
    if os.environ.get(_CHILD_FLAG):
        raise SystemExit(
            f"re-executed into {PEER_VENV} but sys.prefix is {sys.prefix}: refusing to loop"
        )
    py = _venv_python()
    if not py.exists():
        print(f"creating the peer venv {PEER_VENV}", flush=True)
        _run([sys.executable, "-m", "venv", PEER_VENV])
    probe = subprocess.run(
        [str(py), "-c", "import nautilus_trader, numpy, hdrh"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        try:
            _run([py, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
            _run([py, "-m", "pip", "install", "--quiet", nautilus_spec, *PEER_DEPS])
        except subprocess.CalledProcessError as exc:
            raise SystemExit(
                f"could not install {nautilus_spec} into {PEER_VENV} (pip exit status "
                f"{exc.returncode}); check the network or pass --nautilus with another spec"
            ) from exc
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    pth = Path(purelib) / "tradecore_repo.pth"
    want = f"{REPO / 'python'}\n"
    if not pth.exists() or pth.read_text(encoding="utf-8") != want:
        pth.write_text(want, encoding="utf-8")
    env = dict(os.environ, **{_CHILD_FLAG: "1"})
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.pop("VIRTUAL_ENV", None)
    sys.stdout.flush()
    os.execve(str(py), [str(py), str(Path(__file__).resolve()), *argv], env)


# ----------------------------------------------------------------------------- helpers


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _mops(ops_per_s: float) -> str:
    return f"{ops_per_s / 1e6:7.3f} M ops/s"


# ----------------------------------------------------------------------------- the run


def _nautilus_inputs(stream: Any) -> tuple[Any, list[Any]]:
    """(instrument id, one OrderBookDelta per row) for nautilus."""
    from nautilus_trader.model.data import BookOrder, OrderBookDelta
    from nautilus_trader.model.enums import BookAction, OrderSide
    from nautilus_trader.model.identifiers import InstrumentId
    from nautilus_trader.model.objects import Price, Quantity

    iid = InstrumentId.from_str("PEER.SIM")
    actions = (BookAction.ADD, BookAction.DELETE, BookAction.UPDATE)
    sides = (OrderSide.BUY, OrderSide.SELL)
    price_of: dict[int, Any] = {}
    deltas: list[Any] = []
    cols = zip(
        stream.action.tolist(),
        stream.order_id.tolist(),
        stream.side.tolist(),
        stream.price.tolist(),
        stream.qty.tolist(),
        strict=True,
    )
    for seq, (act, oid, side, px, qty) in enumerate(cols, start=1):
        price = price_of.get(px)
        if price is None:
            price = price_of[px] = Price.from_int(px)
        order = BookOrder(sides[side], price, Quantity.from_int(qty), oid)
        deltas.append(OrderBookDelta(iid, actions[act], order, 0, seq, 0, 0))
    return iid, deltas


def _our_calls(stream: Any) -> list[tuple[int, tuple[Any, ...]]]:
    """(action, positional args) per row: submit(id, account, side, price, qty) with the
    defaults LIMIT/GTC/CANCEL_NEWEST, cancel(id), modify(id, price, new_qty)."""
    from tradecore.enums import Side

    sides = (Side.BUY, Side.SELL)
    out: list[tuple[int, tuple[Any, ...]]] = []
    cols = zip(
        stream.action.tolist(),
        stream.order_id.tolist(),
        stream.account.tolist(),
        stream.side.tolist(),
        stream.price.tolist(),
        stream.qty.tolist(),
        strict=True,
    )
    for act, oid, acct, side, px, qty in cols:
        if act == 0:
            out.append((0, (oid, acct, sides[side], px, qty)))
        elif act == 1:
            out.append((1, (oid,)))
        else:
            out.append((2, (oid, px, qty)))
    return out


def _bind(book: Any, calls: Sequence[tuple[int, tuple[Any, ...]]]) -> list[tuple[Any, Any]]:
    fns = (book.submit, book.cancel, book.modify)
    return [(fns[act], args) for act, args in calls]


def _time_nautilus(iid: Any, deltas: Sequence[Any]) -> tuple[float, Any]:
    from nautilus_trader.model.book import OrderBook as NautilusBook
    from nautilus_trader.model.enums import BookType

    book = NautilusBook(iid, BookType.L3_MBO)
    apply = book.apply_delta
    with _runinfo().GcPaused():
        t0 = time.perf_counter_ns()
        for delta in deltas:
            apply(delta)
        t1 = time.perf_counter_ns()
    return (t1 - t0) / 1e9, book


def _time_ours_calls(calls: Sequence[tuple[int, tuple[Any, ...]]]) -> tuple[float, Any]:
    from tradecore import OrderBook

    book = OrderBook()
    bound = _bind(book, calls)
    with _runinfo().GcPaused():
        t0 = time.perf_counter_ns()
        for fn, args in bound:
            fn(*args)
        t1 = time.perf_counter_ns()
    return (t1 - t0) / 1e9, book


def _time_ours_batch(parts: Sequence[Any]) -> tuple[float, Any, list[Any]]:
    """``process`` once per element of ``parts`` (the whole array, or slices of it)."""
    from tradecore import OrderBook

    book = OrderBook()
    process = book.process
    events: list[Any] = []
    with _runinfo().GcPaused():
        t0 = time.perf_counter_ns()
        for part in parts:
            events.append(process(part))
        t1 = time.perf_counter_ns()
    return (t1 - t0) / 1e9, book, events


def _latency_nautilus(iid: Any, deltas: Sequence[Any]) -> dict[str, int]:
    from nautilus_trader.model.book import OrderBook as NautilusBook
    from nautilus_trader.model.enums import BookType
    from tradecore.telemetry.hdr import summarize_ns

    book = NautilusBook(iid, BookType.L3_MBO)
    apply = book.apply_delta
    clock = time.perf_counter_ns
    timings = [0] * len(deltas)
    with _runinfo().GcPaused():
        for i, delta in enumerate(deltas):
            t0 = clock()
            apply(delta)
            timings[i] = clock() - t0
    return summarize_ns(timings).as_dict()


def _latency_ours(calls: Sequence[tuple[int, tuple[Any, ...]]]) -> dict[str, int]:
    from tradecore import OrderBook
    from tradecore.telemetry.hdr import summarize_ns

    book = OrderBook()
    bound = _bind(book, calls)
    clock = time.perf_counter_ns
    timings = [0] * len(bound)
    with _runinfo().GcPaused():
        for i, (fn, args) in enumerate(bound):
            t0 = clock()
            fn(*args)
            timings[i] = clock() - t0
    return summarize_ns(timings).as_dict()


def _nautilus_state(book: Any) -> tuple[Table, Table, list[tuple[int, int, int]], int]:
    """(bid levels, ask levels, L3 rows (price, id, size) bids then asks, resting orders)."""
    levels: list[Table] = []
    l3: list[tuple[int, int, int]] = []
    count = 0
    for side_levels in (book.bids(), book.asks()):
        table: Table = []
        for level in side_levels:
            px = int(level.price.as_decimal())
            orders = level.orders()
            sizes = [int(o.size.as_decimal()) for o in orders]
            table.append((px, sum(sizes), len(orders)))
            l3.extend((px, int(o.order_id), s) for o, s in zip(orders, sizes, strict=True))
            count += len(orders)
        levels.append(table)
    return levels[0], levels[1], l3, count


def _our_state(book: Any, levels: int) -> tuple[Table, Table, list[tuple[int, int, int]], int]:
    from tradecore.enums import Side

    bids, asks = book.depth(levels)
    l3 = [(px, oid, leaves) for oid, _acct, px, leaves in book.orders(Side.BUY)]
    l3 += [(px, oid, leaves) for oid, _acct, px, leaves in book.orders(Side.SELL)]
    return [tuple(lv) for lv in bids], [tuple(lv) for lv in asks], l3, len(book)


def _verify(
    books: dict[str, Any], naut: str, events: dict[str, list[Any]], stream: Any, depth: int
) -> dict[str, Any]:
    """Compare our final books with nautilus' (and the batches' events); True means equal."""
    import numpy as np
    from tradecore.enums import EventKind

    naut_book = books[naut]
    nb, na, nl3, ncount = _nautilus_state(naut_book)
    checks: dict[str, Any] = {}
    # nautilus' best_bid_size()/best_ask_size() give the first order's size in an L3 book, so the
    # best (price, total size) is taken from its top level; its best prices are checked as well.
    n_best = (nb[0][:2] if nb else None, na[0][:2] if na else None)
    n_prices = (naut_book.best_bid_price(), naut_book.best_ask_price())
    n_best_px = tuple(None if p is None else int(p.as_decimal()) for p in n_prices)
    for name, book in books.items():
        if name == naut:
            continue
        ob, oa, ol3, ocount = _our_state(book, max(len(nb), len(na)) + 1)
        o_best = (book.best_bid(), book.best_ask())
        o_best_px = tuple(None if b is None else b[0] for b in o_best)
        checks[name] = {
            "orders": ocount == ncount == stream.live_end,
            "best_bid_ask": o_best == n_best and o_best_px == n_best_px,
            f"top_{depth}_levels": ob[:depth] == nb[:depth] and oa[:depth] == na[:depth],
            "all_levels": ob == nb and oa == na,
            "full_l3_queue_order": ol3 == nl3,
        }
    counts = stream.counts()
    for name, parts in events.items():
        kinds = np.concatenate([part["kind"] for part in parts])
        checks[f"{name}: events"] = {
            "one_event_per_op": len(kinds) == len(stream),
            "accepted_per_add": int((kinds == EventKind.ACCEPTED.code).sum()) == counts["add"],
            "cancelled_per_delete": int((kinds == EventKind.CANCELLED.code).sum())
            == counts["delete"],
            "replaced_per_update": int((kinds == EventKind.REPLACED.code).sum())
            == counts["update"],
        }
    checks["observed"] = {
        "resting_orders": ncount,
        "expected_resting": stream.live_end,
        "best_bid_ask": [list(b) if b else None for b in n_best],
        "bid_levels": len(nb),
        "ask_levels": len(na),
    }
    return checks


def _all_ok(checks: dict[str, Any]) -> bool:
    return all(ok for name, group in checks.items() if name != "observed" for ok in group.values())


def _runinfo() -> ModuleType:
    """tradecore's run-info helpers, imported late: the script starts in whichever venv ran it
    and only re-executes itself in the nautilus venv (where the repository's package is on the
    path) once that venv exists."""
    from tradecore.telemetry import runinfo

    return runinfo


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--ops", type=int, default=1_000_000, help="stream length (1,000,000)")
    parser.add_argument("--seed", type=int, default=7, help="stream seed (7)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (5)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed rounds of every engine first (1)"
    )
    parser.add_argument("--depth", type=int, default=10, help="levels compared at the end (10)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="results file")
    parser.add_argument("--no-latency", action="store_true", help="skip the per-call timer pass")
    parser.add_argument("--nautilus", default=NAUTILUS_SPEC, help="pip spec if installing")
    args = parser.parse_args(args_list)
    for name in ("ops", "repeats", "depth"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")

    if not _in_peer_venv():
        _bootstrap(args_list, args.nautilus)

    # numpy's OpenBLAS threads can spin on the second core after an array operation; nothing here
    # needs BLAS, and on a 2-core machine a spinning thread steals time from the measured one.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        import tradecore
    except ImportError:
        # Run directly with the peer venv's python before the .pth was written: same source.
        sys.path.insert(0, str(REPO / "python"))
        try:
            import tradecore
        except ImportError as exc:
            print(f"cannot import tradecore ({exc}): run `make build` first", file=sys.stderr)
            return 2
    if not Path(tradecore.__file__ or "").resolve().is_relative_to(REPO / "python"):
        print(f"tradecore was imported from {tradecore.__file__}, not {REPO / 'python'}")
        return 2
    import nautilus_trader
    import streams

    load0 = os.getloadavg()
    print(
        f"peer: nautilus_trader {nautilus_trader.__version__} L3_MBO OrderBook vs tradecore "
        f"OrderBook ({_runinfo().git_commit(REPO)}), python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores, load {load0[0]:.2f}"
    )
    t = time.perf_counter()
    stream = streams.l3_stream(args.ops, args.seed)
    counts = stream.counts()
    print(
        f"stream: seed {args.seed}, {len(stream):,} ops = {counts['add']:,} adds, "
        f"{counts['delete']:,} deletes, {counts['update']:,} size updates; "
        f"{stream.live_end:,} resting at the end; adds never cross "
        f"({time.perf_counter() - t:.1f} s to generate)"
    )
    t = time.perf_counter()
    iid, deltas = _nautilus_inputs(stream)
    ops = stream.to_ops()
    calls = _our_calls(stream)
    print(
        "inputs built before timing (nautilus OrderBookDelta/BookOrder/Price/Quantity objects, "
        f"our OP_DTYPE array and argument tuples: {time.perf_counter() - t:.1f} s); only the book "
        "operations are timed, GC off while timing"
    )

    naut, per_call, batch, chunked = (
        "nautilus apply_delta",
        "ours per call",
        "ours batch",
        f"ours batch {CHUNK_ROWS // 1024}k-row calls",
    )
    names = (naut, per_call, batch, chunked)
    slices = [ops[i : i + CHUNK_ROWS] for i in range(0, len(ops), CHUNK_ROWS)]
    seconds: dict[str, list[float]] = {n: [] for n in names}
    kernel: dict[str, list[float]] = {n: [] for n in names}
    books: dict[str, Any] = {}
    events: dict[str, list[Any]] = {}
    for r in range(-args.warmup, args.repeats):
        for i in range(len(names)):
            name = names[(r + i) % len(names)]  # rotate the order from round to round
            sys0 = resource.getrusage(resource.RUSAGE_SELF).ru_stime
            if name == naut:
                sec, books[name] = _time_nautilus(iid, deltas)
            elif name == per_call:
                sec, books[name] = _time_ours_calls(calls)
            else:
                sec, books[name], events[name] = _time_ours_batch(
                    [ops] if name == batch else slices
                )
            if r >= 0:
                seconds[name].append(sec)
                kernel[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_stime - sys0)
        if r < 0:
            print(f"  warm-up round {r + args.warmup + 1}/{args.warmup} (not timed)", flush=True)
            continue
        print(
            f"  round {r + 1}/{args.repeats}: "
            + ", ".join(
                f"{n} {len(stream) / seconds[n][-1] / 1e6:.3f} M/s "
                f"(kernel {kernel[n][-1] * 1e3:.0f} ms)"
                for n in names
            ),
            flush=True,
        )

    median_s = {n: statistics.median(v) for n, v in seconds.items()}
    rate = {n: len(stream) / median_s[n] for n in names}
    ratio = {n: rate[n] / rate[naut] for n in names}

    latency: dict[str, dict[str, int]] = {}
    if not args.no_latency:
        latency["nautilus apply_delta"] = _latency_nautilus(iid, deltas)
        latency["ours per call"] = _latency_ours(calls)

    checks = _verify(books, naut, events, stream, args.depth)
    ok = _all_ok(checks)
    load1 = os.getloadavg()

    print()
    goals = {per_call: TARGET_PER_CALL, batch: TARGET_BATCH, chunked: TARGET_BATCH}
    print(f"{'engine':<28}{'median':>10}{'throughput':>20}{'vs nautilus':>13}   target")
    for n in names:
        target = ""
        if n in goals:
            target = f">= {goals[n]:.0f}x " + ("met" if ratio[n] >= goals[n] else "MISSED")
        print(f"{n:<28}{median_s[n]:>8.3f} s{_mops(rate[n]):>20}{ratio[n]:>12.2f}x   {target}")
    if latency:
        from tradecore.telemetry.hdr import format_ns

        print()
        print("per-call latency (perf_counter_ns around each call, timer cost included):")
        for n, lat in latency.items():
            print(
                f"  {n:<26} p50 {format_ns(lat['p50']):>9}  p90 {format_ns(lat['p90']):>9}  "
                f"p99 {format_ns(lat['p99']):>9}  p99.9 {format_ns(lat['p999']):>9}  "
                f"max {format_ns(lat['max']):>9}"
            )
    print()
    obs = checks["observed"]
    print(
        f"verification: {obs['resting_orders']:,} resting orders, best bid/ask "
        f"{obs['best_bid_ask']}, {obs['bid_levels']} bid / {obs['ask_levels']} ask levels"
    )
    for name, group in checks.items():
        if name == "observed":
            continue
        print(
            f"  {name:<34} "
            + ", ".join(f"{k} {'ok' if v else 'DIFFERENT'}" for k, v in group.items())
        )
    print(f"load average: {load0[0]:.2f} at start, {load1[0]:.2f} at end (2 shared cores)")

    payload: dict[str, Any] = {
        "command": " ".join([".venv/bin/python bench/peer_nautilus.py", *args_list]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": _runinfo().git_commit(REPO),
        "machine": _runinfo().machine_info(),
        "loadavg_1m": {"start": round(load0[0], 2), "end": round(load1[0], 2)},
        "versions": {
            "nautilus_trader": nautilus_trader.__version__,
            "tradecore": getattr(tradecore, "__version__", "unknown"),
        },
        "stream": {
            "seed": args.seed,
            "ops": len(stream),
            "counts": counts,
            "resting_at_end": stream.live_end,
            "adds_cross": False,
        },
        "method": (
            "inputs built before timing; only book operations timed; GC off; "
            f"{args.warmup} untimed warm-up round(s), then {args.repeats} rounds, engines in "
            "rotating order, fresh book each; kernel CPU time per run from getrusage; "
            "throughput = ops / median seconds"
        ),
        "seconds": {n: [round(x, 6) for x in v] for n, v in seconds.items()},
        "kernel_seconds": {n: [round(x, 6) for x in v] for n, v in kernel.items()},
        "ops_per_s": {n: round(v) for n, v in rate.items()},
        "ratios_vs_nautilus": {n: round(ratio[n], 2) for n in names if n != naut},
        "targets": {
            n: {"ratio": goals[n], "met": ratio[n] >= goals[n]} for n in names if n in goals
        },
        "chunk_rows": CHUNK_ROWS,
        "latency_ns": latency,
        "verification": checks,
        "verified": ok,
    }
    _write_json(args.json, payload)
    print(f"results written to {args.json}")
    if not ok:
        print("VERIFICATION FAILED: the books disagree (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
