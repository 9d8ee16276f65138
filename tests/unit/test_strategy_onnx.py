"""The ONNX model strategy: a real model trained with scikit-learn, converted with skl2onnx and
run by onnxruntime; metadata checks; the example training script end to end."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from tradecore import Instrument
from tradecore.enums import Side
from tradecore.errors import ConfigError
from tradecore.strategy import create_strategy, feature_names
from tradecore.strategy.onnx_model import OnnxStrategy
from tradecore.strategy.testing import DictBook, RecordingContext

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "examples" / "train_onnx.py"
SYM = "FTMUSDT"
INST = Instrument(SYM, tick_size="0.0001", lot_size="1")


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_onnx", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def train_onnx() -> ModuleType:
    return _script()


def _synthetic(n: int = 600, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Rows in the model's layout; the label is the sign of imbalance_n beyond +-0.2."""
    rng = np.random.default_rng(seed)
    names = feature_names([5, 20])
    x = rng.normal(0.0, 1.0, size=(n, len(names))).astype(np.float32)
    imb = rng.uniform(-1, 1, size=n).astype(np.float32)
    x[:, names.index("imbalance_n")] = imb
    y = np.where(imb > 0.2, 1, np.where(imb < -0.2, -1, 0)).astype(np.int64)
    return x, y


@pytest.fixture(scope="module")
def model_path(train_onnx: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    x, y = _synthetic()
    model = train_onnx.train(x, y)
    path = tmp_path_factory.mktemp("onnx") / "imb.onnx"
    path.write_bytes(train_onnx.to_onnx(model, x.shape[1]).SerializeToString())
    return path


def _strategy(model: Path, **params: object) -> OnnxStrategy:
    base: dict[str, object] = {"symbol": SYM, "model": str(model), "threshold": 0.5}
    base.update(params)
    s = create_strategy("onnx", "ml", base)
    assert isinstance(s, OnnxStrategy)
    return s


def test_model_metadata_is_read_back(model_path: Path) -> None:
    s = _strategy(model_path)
    assert s.spec.names == feature_names([5, 20])
    assert s.spec.levels == 5 and s.spec.momentum_windows == (5, 20)
    assert s.spec.classes == [-1, 0, 1]
    assert s.flow.window_ns == 5_000_000_000


def test_onnx_strategy_buys_on_bid_pressure_and_sells_on_ask_pressure(model_path: Path) -> None:
    ctx = RecordingContext([INST])
    s = ctx.start(_strategy(model_path, order_qty=3, max_position=3))
    assert isinstance(s, OnnxStrategy)
    ctx.book_update(SYM, DictBook([(2000, 90), (1999, 50)], [(2001, 5), (2002, 5)]))
    assert s.score > 0.5 and s.inferences == 1
    [o] = ctx.submitted
    assert (o.side, o.qty, o.price) == (Side.BUY, 3, 2001)
    ctx.fill(o.client_order_id)
    ctx.book_update(SYM, DictBook([(2000, 5), (1999, 5)], [(2001, 90), (2002, 50)]))
    assert s.score < -0.5
    assert (ctx.submitted[-1].side, ctx.submitted[-1].qty) == (Side.SELL, 3)
    # the score is the model's P(up) - P(down) for the features the strategy computed
    row = [0.0] * len(s.spec.names)
    row[s.features.vector_into(row)] = s.flow.imbalance(ctx.now)
    assert s.predict(row) == pytest.approx(s.score)


def test_onnx_strategy_holds_between_thresholds_and_runs_every_n(model_path: Path) -> None:
    ctx = RecordingContext([INST])
    s = ctx.start(_strategy(model_path, every_n=2))
    balanced = DictBook([(2000, 10), (1999, 10)], [(2001, 10), (2002, 10)])
    ctx.book_update(SYM, balanced)
    assert s.inferences == 0  # type: ignore[attr-defined]
    ctx.book_update(SYM)
    assert s.inferences == 1 and abs(s.score) < 0.5  # type: ignore[attr-defined]
    assert not ctx.submitted


def test_onnx_strategy_counts_trades_in_its_flow(model_path: Path) -> None:
    ctx = RecordingContext([INST])
    s = ctx.start(_strategy(model_path))
    ctx.trade(SYM, 2000, 7, Side.BUY)
    ctx.trade(SYM, 2000, 3, Side.SELL)
    ctx.trade("OTHER", 2000, 100, Side.SELL)
    assert s.flow.imbalance(ctx.now) == pytest.approx(0.4)  # type: ignore[attr-defined]


def _convert_without_metadata(train_onnx: ModuleType, tmp_path: Path, meta: dict[str, str]) -> Path:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    x, y = _synthetic(200)
    model = train_onnx.train(x, y)
    onx: Any = convert_sklearn(
        model,
        initial_types=[("features", FloatTensorType([None, x.shape[1]]))],
        options={LogisticRegression: {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    for k, v in meta.items():
        prop = onx.metadata_props.add()
        prop.key = k
        prop.value = v
    path = tmp_path / "m.onnx"
    path.write_bytes(onx.SerializeToString())
    return path


def test_model_without_metadata_is_refused(train_onnx: ModuleType, tmp_path: Path) -> None:
    path = _convert_without_metadata(train_onnx, tmp_path, {})
    with pytest.raises(ConfigError, match=r"has no 'tradecore\.features' metadata"):
        _strategy(path)


def test_model_with_other_features_is_refused(train_onnx: ModuleType, tmp_path: Path) -> None:
    spec = dict(train_onnx.SPEC)
    spec["names"] = ["a", "b"]
    path = _convert_without_metadata(
        train_onnx,
        tmp_path,
        {"tradecore.features": json.dumps(spec), "tradecore.classes": "[-1, 0, 1]"},
    )
    with pytest.raises(ConfigError, match="are not the ones tradecore computes"):
        _strategy(path)


def test_model_with_a_wrong_input_width_is_refused(train_onnx: ModuleType, tmp_path: Path) -> None:
    spec = dict(train_onnx.SPEC)
    spec["momentum_windows"] = [5]  # 8 features by name, the model takes 9
    spec["names"] = feature_names([5])
    path = _convert_without_metadata(
        train_onnx,
        tmp_path,
        {"tradecore.features": json.dumps(spec), "tradecore.classes": "[-1, 0, 1]"},
    )
    with pytest.raises(ConfigError, match="does not take 8 features"):
        _strategy(path)


def test_a_file_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="cannot load"):
        _strategy(bad)


@pytest.mark.slow
def test_training_script_end_to_end_on_recorded_data(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--latency-runs", "200"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert "samples: " in proc.stdout and "inference latency" in proc.stdout
    s = _strategy(out)
    assert s.spec.classes is not None and {-1, 1} <= set(s.spec.classes)
