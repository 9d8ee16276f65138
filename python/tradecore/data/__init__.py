"""Market data for backtests: loaders, the columnar format, synthetic data.

* :mod:`~tradecore.data.schema`: the table kinds (``quotes``, ``trades``, ``depth``,
  ``snapshot``, ``l3``, ``l3book``) and the one chunk validation.
* :mod:`~tradecore.data.columnar`: Parquet tables written and read in chunks
  (:class:`ColumnarWriter`, :func:`open_columnar`).
* :mod:`~tradecore.data.binance`, :mod:`~tradecore.data.lobster`, :mod:`~tradecore.data.csvio`:
  loaders; :mod:`~tradecore.data.convert`: ``tradecore data convert``.
* :mod:`~tradecore.data.synthetic`: seeded L2/L3 generators of any size.

Every input error is a :class:`DataFormatError` naming the file and row. The package directory
also holds the LOBSTER samples the core's replay ships (``data/lobster/*.csv.gz``).
"""

from tradecore.data.columnar import ColumnarFile, ColumnarWriter, open_columnar, write_table
from tradecore.data.errors import DataFormatError
from tradecore.data.schema import KINDS, Chunk, Kind, check_chunk, kind_named

__all__ = [
    "KINDS",
    "Chunk",
    "ColumnarFile",
    "ColumnarWriter",
    "DataFormatError",
    "Kind",
    "check_chunk",
    "kind_named",
    "open_columnar",
    "write_table",
]
