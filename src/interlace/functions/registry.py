"""Function versions by name; the latest is the highest live version.

Versions order numerically where they parse as versions (``1 < 2 < 10``, ``1.2.0 < 1.10``,
``2.0rc1 < 2.0``, per PEP 440), and after those, names that do not parse, in text order. A version
that another version of the function shadows to (``shadow: {version: ...}``) is a candidate under
evaluation, not live: the latest is the highest version that is no shadow target (it stays callable
by its version path).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from packaging.version import InvalidVersion, Version

from interlace.core.errors import FunctionNotFound
from interlace.functions.definition import FunctionDefinition

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from interlace.config.functions import FunctionConfig

__all__ = ["FunctionRegistry", "version_key"]


def version_key(version: str) -> tuple[int, Version | None, str]:
    """Sort key: parseable versions by value, then the others by text."""
    try:
        return (0, Version(version), version)
    except InvalidVersion:
        return (1, None, version)


def _sort_key(definition: FunctionDefinition) -> tuple[int, Version, str]:
    rank, parsed, text = version_key(definition.version)
    return (rank, parsed or Version("0"), text)


class FunctionRegistry:
    """Every compiled function of one configuration."""

    __slots__ = ("_by_name", "_latest")

    def __init__(self, configs: Iterable[FunctionConfig] = ()) -> None:
        by_name: dict[str, list[FunctionDefinition]] = {}
        for config in configs:
            by_name.setdefault(config.name, []).append(FunctionDefinition(config))
        self._by_name = {name: sorted(defs, key=_sort_key) for name, defs in sorted(by_name.items())}
        self._latest: dict[str, FunctionDefinition] = {}
        for name, versions in self._by_name.items():
            candidates = {d.config.shadow.version for d in versions if d.config.shadow is not None}
            live = [d for d in versions if d.version not in candidates] or versions
            self._latest[name] = live[-1]

    def __len__(self) -> int:
        return len(self._by_name)

    def __iter__(self) -> Iterator[FunctionDefinition]:
        """Every version of every function, by name then version."""
        for versions in self._by_name.values():
            yield from versions

    def names(self) -> list[str]:
        return list(self._by_name)

    def versions(self, name: str) -> list[FunctionDefinition]:
        """Oldest first; 404 when there is no such function."""
        found = self._by_name.get(name)
        if not found:
            raise FunctionNotFound(
                f"The function '{name}' does not exist. Available functions: "
                f"{', '.join(self._by_name) or 'none configured'}.",
                param="name",
            )
        return found

    def get(self, name: str, version: str | None = None) -> FunctionDefinition:
        """``version`` of ``name``, or its latest; 404 naming what exists."""
        versions = self.versions(name)
        if version is None:
            return self._latest[name]
        for definition in versions:
            if definition.version == version:
                return definition
        raise FunctionNotFound(
            f"The function '{name}' has no version '{version}'. Versions: "
            f"{', '.join(d.version for d in versions)}.",
            param="version",
        )

    def latest(self) -> list[FunctionDefinition]:
        return list(self._latest.values())
