#!/usr/bin/env python3
"""Train a small model on recorded Binance data and write it as ONNX for the ``onnx`` strategy.

Run: ``.venv/bin/python examples/train_onnx.py [--out examples/models/updown_lr.onnx]
[--horizon 10] [RECORDING ...]`` (default: both cryptofeed recordings in
``/work/shared/data/binance/cryptofeed`` if present, else the recordings embedded in the
package).

What it does:

1. Replays each recording through the market-data layer
   (:class:`tradecore.marketdata.replay.RecordedSource`: the real Binance sync procedure and
   the Rust L2 book) and, on every book update, computes the feature vector exactly as the
   ``onnx`` strategy will at run time (:class:`tradecore.strategy.features.BookFeatures` +
   :class:`~tradecore.strategy.features.TradeFlow`, same settings).
2. Labels each update with the direction of the mid ``--horizon`` book updates later in the
   same symbol: -1 (down), 0 (unchanged), 1 (up).
3. Fits ``StandardScaler`` + multinomial ``LogisticRegression`` (scikit-learn) on the first
   ``--train-share`` of each symbol's updates and reports accuracy on the rest against the
   majority-class baseline (the recordings are minutes long: this is a demonstration of the
   pipeline, not a trading edge).
4. Converts it with skl2onnx (``zipmap=False``: one ``probabilities`` tensor), stores the
   feature recipe and class order in the model's metadata (``tradecore.features``,
   ``tradecore.classes``: the strategy refuses a model whose features do not match), checks
   that onnxruntime reproduces scikit-learn's probabilities, and measures the inference
   latency of one row (the strategy's case) with onnxruntime on one thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from tradecore.marketdata.events import BookUpdate, Resync, TradeTick
from tradecore.marketdata.replay import RecordedSource
from tradecore.strategy.features import BookFeatures, TradeFlow, feature_names

SHARED = Path("/work/shared/data/binance/cryptofeed")
EMBEDDED = Path(__file__).resolve().parent.parent / "python" / "tradecore" / "node" / "data"
DEFAULT_OUT = Path(__file__).resolve().parent / "models" / "updown_lr.onnx"

# The feature recipe (the strategy reads it back from the model's metadata).
SPEC: dict[str, Any] = {
    "levels": 5,
    "depth_decay": 0.5,
    "vol_alpha": 0.05,
    "momentum_windows": [5, 20],
    "trade_window_ms": 5_000,
}


def default_recordings() -> list[Path]:
    """The shared cryptofeed directories, or the package's embedded recordings."""
    if SHARED.is_dir():
        dirs = sorted(p for p in SHARED.iterdir() if p.is_dir())
        if dirs:
            return dirs
    return sorted(EMBEDDED.glob("binance-*.jsonl.gz"))


def build_dataset(
    recordings: list[Path], horizon: int, spec: dict[str, Any] = SPEC
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature rows ``X`` (float32), labels ``y`` in {-1, 0, 1}, and each row's position in
    its symbol's series as a fraction in [0, 1) (for a per-symbol time split)."""
    names = feature_names(spec["momentum_windows"])
    rows: list[list[float]] = []
    mids: list[int] = []
    keys: list[tuple[str, int]] = []  # (recording:symbol, index within the series)
    for rec in recordings:
        feats: dict[str, BookFeatures] = {}
        flows: dict[str, TradeFlow] = {}
        counts: dict[str, int] = defaultdict(int)
        for ev in RecordedSource(rec):
            sym = ev.symbol
            if sym not in feats:
                feats[sym] = BookFeatures(
                    levels=spec["levels"],
                    depth_decay=spec["depth_decay"],
                    vol_alpha=spec["vol_alpha"],
                    momentum_windows=spec["momentum_windows"],
                )
                flows[sym] = TradeFlow(spec["trade_window_ms"] * 1_000_000)
            if isinstance(ev, TradeTick):
                flows[sym].add(ev.ts_ns, ev.qty, ev.aggressor)
            elif isinstance(ev, Resync):
                feats[sym].reset()
            elif isinstance(ev, BookUpdate):
                f = feats[sym]
                if not f.update(ev.book):
                    continue
                row = [0.0] * len(names)
                i = f.vector_into(row)
                row[i] = flows[sym].imbalance(ev.ts_ns)
                rows.append(row)
                mids.append(f.mid2)
                keys.append((f"{rec.name}:{sym}", counts[sym]))
                counts[sym] += 1
    # Labels: sign of the mid's change `horizon` updates later in the same series.
    by_series: dict[str, list[int]] = defaultdict(list)
    for idx, (series, _) in enumerate(keys):
        by_series[series].append(idx)
    keep: list[int] = []
    labels: list[int] = []
    where: list[float] = []
    for idxs in by_series.values():
        for j, idx in enumerate(idxs[: len(idxs) - horizon]):
            later = mids[idxs[j + horizon]]
            labels.append((later > mids[idx]) - (later < mids[idx]))
            keep.append(idx)
            where.append(j / len(idxs))
    x = np.asarray([rows[i] for i in keep], dtype=np.float32).reshape(-1, len(names))
    return x, np.asarray(labels, dtype=np.int64), np.asarray(where)


def train(x: np.ndarray, y: np.ndarray) -> Any:
    """A scaler + multinomial logistic regression pipeline, fitted."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2_000))
    model.fit(x, y)
    return model


def to_onnx(model: Any, n_features: int, spec: dict[str, Any] = SPEC) -> Any:
    """The fitted pipeline as an ONNX ModelProto with the tradecore metadata."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    onx = convert_sklearn(
        model,
        initial_types=[("features", FloatTensorType([None, n_features]))],
        options={LogisticRegression: {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    meta = {
        "tradecore.features": json.dumps(
            {"names": feature_names(spec["momentum_windows"]), **spec}, sort_keys=True
        ),
        "tradecore.classes": json.dumps([int(c) for c in model.classes_]),
    }
    for key, value in meta.items():
        prop = onx.metadata_props.add()
        prop.key = key
        prop.value = value
    return onx


def inference_latency_ns(path: Path, row: np.ndarray, runs: int = 3_000) -> dict[str, int]:
    """p50/p90/p99/max of ``InferenceSession.run`` on one row, one thread (ns)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x = row.reshape(1, -1).astype(np.float32)
    for _ in range(200):
        sess.run(["probabilities"], {name: x})
    times = []
    clock = time.perf_counter_ns
    for _ in range(runs):
        t0 = clock()
        sess.run(["probabilities"], {name: x})
        times.append(clock() - t0)
    times.sort()
    return {
        "p50": times[len(times) // 2],
        "p90": times[int(len(times) * 0.9)],
        "p99": times[int(len(times) * 0.99)],
        "max": times[-1],
        "mean": int(statistics.fmean(times)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("recordings", nargs="*", type=Path, help="cryptofeed dirs or .jsonl.gz files")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--horizon", type=int, default=10, help="label horizon in book updates")
    ap.add_argument("--train-share", type=float, default=0.7)
    ap.add_argument("--latency-runs", type=int, default=3_000)
    args = ap.parse_args(argv)
    if args.horizon < 1 or not 0.1 <= args.train_share <= 0.95:
        ap.error("--horizon must be >= 1 and --train-share in [0.1, 0.95]")
    recordings = args.recordings or default_recordings()
    if not recordings:
        print("no recordings found", file=sys.stderr)
        return 2
    x, y, where = build_dataset(recordings, args.horizon)
    classes, counts = np.unique(y, return_counts=True)
    print(f"recordings: {', '.join(str(r) for r in recordings)}")
    print(
        f"samples: {len(y)}, features: {x.shape[1]}, "
        f"classes: {dict(zip(classes.tolist(), counts.tolist(), strict=True))}"
    )
    if not {-1, 1} <= set(classes.tolist()):
        print("the data has no up or no down moves at this horizon", file=sys.stderr)
        return 2
    train_mask = where < args.train_share
    model = train(x[train_mask], y[train_mask])
    test_x, test_y = x[~train_mask], y[~train_mask]
    majority = classes[np.argmax(counts)]
    if len(test_y):
        acc = float((model.predict(test_x) == test_y).mean())
        base = float((test_y == majority).mean())
        print(
            f"held-out accuracy: {acc:.3f} (majority class {majority}: {base:.3f}), n={len(test_y)}"
        )
    model = train(x, y)  # the shipped model uses every sample
    onx = to_onnx(model, x.shape[1])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(onx.SerializeToString())
    import onnxruntime as ort

    sess = ort.InferenceSession(str(args.out), providers=["CPUExecutionProvider"])
    got = sess.run(["probabilities"], {sess.get_inputs()[0].name: x})[0]
    diff = float(np.abs(got - model.predict_proba(x)).max())
    print(
        f"wrote {args.out} ({args.out.stat().st_size} bytes); "
        f"onnxruntime vs sklearn max |dp| = {diff:.2e}"
    )
    if diff > 1e-4:
        print("onnxruntime disagrees with scikit-learn", file=sys.stderr)
        return 1
    lat = inference_latency_ns(args.out, x[0], args.latency_runs)
    print(
        "inference latency, one row, 1 thread: "
        + ", ".join(f"{k} {v / 1000:.1f} us" for k, v in lat.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
