"""ONNX model strategy: features in, a score out, the score mapped to a target position.

Owns: :class:`OnnxStrategy` (registry name ``"onnx"``) and :func:`read_model_spec`, which reads
the feature recipe a model was trained with from its metadata, so the features a model sees at
run time cannot drift from the ones it was trained on.

A model is an ``.onnx`` file with one float input of shape ``[N, F]`` and metadata (written by
``examples/train_onnx.py``):

* ``tradecore.features``: JSON ``{"names": [...], "levels": int, "depth_decay": float,
  "vol_alpha": float, "momentum_windows": [int...], "trade_window_ms": int}``: the
  :class:`~tradecore.strategy.features.BookFeatures` and
  :class:`~tradecore.strategy.features.TradeFlow` settings, and the feature names in input
  order (checked against :func:`~tradecore.strategy.features.feature_names` and ``F``).
* ``tradecore.classes`` (classifiers): JSON list of the class labels in probability-column
  order, containing ``-1`` (down) and ``1`` (up). The score is ``P(up) - P(down)``, read from
  the output named ``probabilities`` (skl2onnx with ``zipmap=False``). Without it the model is
  a regressor and the score is its first output's first value.

Rule: every ``every_n`` valid book updates the model runs once; ``score >= threshold`` sets the
target to ``+max_position``, ``score <= -threshold`` to ``-max_position``, else the target is
kept; orders follow :class:`~tradecore.strategy.base.TargetStrategy`.

Invariants: the session is created once at construction with one intra-op and one inter-op
thread (the node owns the cores); the input buffer is allocated once and refilled in place.

Cost: a feature update plus one ``InferenceSession.run`` (tens of microseconds for a small
model: bench/bench_strategy.py reports it), every ``every_n`` updates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tradecore.errors import ConfigError
from tradecore.marketdata.events import BookUpdate, Resync, TradeTick
from tradecore.strategy.base import TargetStrategy
from tradecore.strategy.features import BookFeatures, TradeFlow, feature_names
from tradecore.strategy.params import ParamReader

__all__ = ["ModelSpec", "OnnxStrategy", "read_model_spec"]

FEATURES_KEY = "tradecore.features"
CLASSES_KEY = "tradecore.classes"


class ModelSpec:
    """The feature recipe and output mapping of one model (from its metadata)."""

    def __init__(
        self,
        names: list[str],
        levels: int,
        depth_decay: float,
        vol_alpha: float,
        momentum_windows: tuple[int, ...],
        trade_window_ms: int,
        classes: list[int] | None,
    ) -> None:
        self.names = names
        self.levels = levels
        self.depth_decay = depth_decay
        self.vol_alpha = vol_alpha
        self.momentum_windows = momentum_windows
        self.trade_window_ms = trade_window_ms
        self.classes = classes


def read_model_spec(meta: dict[str, str], where: str) -> ModelSpec:
    """Parse and check the ``tradecore.*`` metadata of a model; ConfigError naming ``where``."""
    raw = meta.get(FEATURES_KEY)
    if raw is None:
        raise ConfigError(
            f"{where}: the model has no {FEATURES_KEY!r} metadata (which features, in which "
            "order); train it with examples/train_onnx.py or add the metadata"
        )
    try:
        spec = json.loads(raw)
        windows = tuple(int(w) for w in spec["momentum_windows"])
        out = ModelSpec(
            names=[str(n) for n in spec["names"]],
            levels=int(spec["levels"]),
            depth_decay=float(spec["depth_decay"]),
            vol_alpha=float(spec["vol_alpha"]),
            momentum_windows=windows,
            trade_window_ms=int(spec["trade_window_ms"]),
            classes=None,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{where}: bad {FEATURES_KEY!r} metadata: {exc!r}") from None
    expected = feature_names(out.momentum_windows)
    if out.names != expected:
        raise ConfigError(
            f"{where}: the model's features {out.names} are not the ones tradecore computes "
            f"for these settings {expected}"
        )
    raw_classes = meta.get(CLASSES_KEY)
    if raw_classes is not None:
        try:
            classes = [int(c) for c in json.loads(raw_classes)]
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{where}: bad {CLASSES_KEY!r} metadata: {exc!r}") from None
        if -1 not in classes or 1 not in classes:
            raise ConfigError(f"{where}: {CLASSES_KEY} must contain -1 and 1, got {classes}")
        out.classes = classes
    return out


class OnnxStrategy(TargetStrategy):
    """Runs an ONNX model on the feature vector and trades on its score.

    Parameters (besides the common ones): ``model`` (path of the ``.onnx`` file, required),
    ``threshold`` (> 0, default 0.2), ``every_n`` (>= 1, default 1).
    """

    kind = "onnx"

    def __init__(self, name: str = "onnx", **params: object) -> None:
        p = ParamReader(self.kind, name, params)
        symbol = self.read_common(p)
        model = p.string("model")
        self.threshold = p.number("threshold", 0.2, gt=0.0)
        self.every_n = p.integer("every_n", 1, ge=1)
        p.finish()
        super().__init__(name, (symbol,))
        self._init_target(symbol)
        where = f"{p.where}: model {model!r}"
        path = Path(model)
        if not path.is_file():
            raise ConfigError(f"{where}: no such file")
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        try:
            self.session: Any = ort.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ConfigError(f"{where}: cannot load: {exc}") from None
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        spec = read_model_spec(meta, where)
        self.spec = spec
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ConfigError(f"{where}: expected one input, the model has {len(inputs)}")
        shape = inputs[0].shape
        if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != len(spec.names)):
            raise ConfigError(
                f"{where}: input shape {shape} does not take {len(spec.names)} features"
            )
        self._input_name: str = inputs[0].name
        outputs = [o.name for o in self.session.get_outputs()]
        if spec.classes is not None:
            if "probabilities" not in outputs:
                raise ConfigError(
                    f"{where}: a classifier needs an output named 'probabilities' "
                    f"(skl2onnx option zipmap=False); outputs are {outputs}"
                )
            self._output = "probabilities"
            self._up = spec.classes.index(1)
            self._down = spec.classes.index(-1)
        else:
            self._output = outputs[0]
            self._up = self._down = -1
        self.features = BookFeatures(
            levels=spec.levels,
            depth_decay=spec.depth_decay,
            vol_alpha=spec.vol_alpha,
            momentum_windows=spec.momentum_windows,
        )
        self.flow = TradeFlow(spec.trade_window_ms * 1_000_000)
        self._row = [0.0] * len(spec.names)
        self._x = np.zeros((1, len(spec.names)), dtype=np.float32)
        self._count = 0
        self.score = 0.0
        self.inferences = 0

    def predict(self, row: list[float]) -> float:
        """The model's score for one feature row (``P(up) - P(down)`` or the regression)."""
        x = self._x
        x[0, :] = row
        out = self.session.run([self._output], {self._input_name: x})[0]
        self.inferences += 1
        if self._up >= 0:
            return float(out[0, self._up] - out[0, self._down])
        return float(np.asarray(out).reshape(-1)[0])

    def on_trade(self, event: TradeTick) -> None:
        if event.symbol == self.symbol:
            self.flow.add(event.ts_ns, event.qty, event.aggressor)

    def on_book(self, event: BookUpdate) -> None:
        f = self.features
        if event.symbol != self.symbol or not f.update(event.book):
            return
        self._count += 1
        if self._count % self.every_n:
            return
        row = self._row
        i = f.vector_into(row)
        row[i] = self.flow.imbalance(event.ts_ns)
        score = self.predict(row)
        self.score = score
        if score >= self.threshold:
            target = self.max_position
        elif score <= -self.threshold:
            target = -self.max_position
        else:
            target = self.target
        self.trade_toward(target, f.bid, f.ask)

    def on_resync(self, event: Resync) -> None:
        if event.symbol == self.symbol:
            self.features.reset()
