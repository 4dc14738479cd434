"""A minimal column store: equal-length numpy arrays under names.

The generator builds every record set as columns so that volumes of millions stay vectorised;
this class only keeps the columns together while they are filtered, taken and concatenated.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

import numpy as np


class Table:
    def __init__(self, **columns: Any):
        self.columns: dict[str, np.ndarray] = {}
        length = None
        for name, values in columns.items():
            array = values if isinstance(values, np.ndarray) else np.asarray(values)
            if length is None:
                length = len(array)
            elif len(array) != length:
                raise ValueError(f"column {name} has {len(array)} rows, expected {length}")
            self.columns[name] = array
        self._len = length or 0

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __setitem__(self, name: str, values: Any) -> None:
        array = values if isinstance(values, np.ndarray) else np.asarray(values)
        if self.columns and len(array) != self._len:
            raise ValueError(f"column {name} has {len(array)} rows, expected {self._len}")
        if not self.columns:
            self._len = len(array)
        self.columns[name] = array

    def __contains__(self, name: str) -> bool:
        return name in self.columns

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def take(self, index: np.ndarray) -> Table:
        return Table(**{name: col[index] for name, col in self.columns.items()})

    def filter(self, mask: np.ndarray) -> Table:
        return self.take(np.flatnonzero(mask))

    @staticmethod
    def concat(tables: Iterable[Table]) -> Table:
        tables = [t for t in tables if t.columns]
        if not tables:
            return Table()
        names = list(tables[0].columns)
        return Table(**{name: np.concatenate([t[name] for t in tables]) for name in names})

    def rows(self, *names: str) -> Iterator[tuple]:
        """Python tuples of the named columns, for executemany."""
        return zip(*(self.columns[n].tolist() for n in names))
