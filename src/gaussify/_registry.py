"""A registry of classes by name, imported on first lookup: the regularizers' and the KL estimators' (one per
subpackage, each listing its own modules)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import ClassVar, TypeVar

T = TypeVar("T")


class LazyRegistry(Mapping[str, T]):
    """Name → class, given as ``"module:Class"`` paths relative to the package :attr:`package` and imported on
    first lookup, so that the names are known without importing any entry (nor what it needs, e.g. torch).

    A subclass sets :attr:`package`; the order of ``paths`` is the order of every list derived from it.
    """

    package: ClassVar[str]
    """The package the module paths are relative to."""

    def __init__(self, paths: dict[str, str]) -> None:
        self.paths = dict(paths)

    def class_name(self, name: str) -> str:
        """The class name of the entry ``name``, without importing it."""
        return self.paths[name].partition(":")[2]

    def __getitem__(self, name: str) -> T:
        module, _, cls = self.paths[name].partition(":")
        value: T = getattr(importlib.import_module(f".{module}", self.package), cls)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.paths!r})"
