"""The one error type of :mod:`tradecore.data`: bad input that names its file and row.

Owns :class:`DataFormatError`. Every loader, the columnar reader and writer and the CSV
converter raise it for input they cannot accept (a truncated or corrupt file, a missing or
unknown column, timestamps that go backwards, a value of the wrong type), with the file and,
where one exists, the 1-based row (data row, header not counted) or line in the message. It is
a :class:`~tradecore.errors.UsageError`, so ``tradecore data ...`` prints it on one line and
exits with status 2.
"""

from __future__ import annotations

from tradecore.errors import UsageError

__all__ = ["DataFormatError"]


class DataFormatError(UsageError):
    """Input data that cannot be used: ``source`` (a path or name), ``row`` (1-based data row,
    or ``None`` when the problem is the whole file) and ``problem`` (what was wrong)."""

    def __init__(self, source: object, row: int | None, problem: str, what: str = "row") -> None:
        self.source = str(source)
        self.row = row
        self.problem = problem
        self.what = what
        where = self.source if row is None else f"{self.source}: {what} {row}"
        super().__init__(f"{where}: {problem}")

    def __reduce__(self) -> tuple[type[DataFormatError], tuple[str, int | None, str, str]]:
        return (type(self), (self.source, self.row, self.problem, self.what))
