"""The package's shape holds: public modules declare __all__, the core imports no adapter."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import interlace

SRC = Path(interlace.__file__).parent
# modules whose import pulls in optional heavy extras or run a program on import
SKIP = {"interlace.__main__"}


def _modules() -> list[str]:
    names = [
        info.name
        for info in pkgutil.walk_packages([str(SRC)], prefix="interlace.")
        if ".migrations" not in info.name
    ]
    return sorted(n for n in names if n not in SKIP)


@pytest.mark.parametrize("name", _modules())
def test_public_modules_declare_all_and_it_resolves(name: str) -> None:
    module = importlib.import_module(name)
    if any(part.startswith("_") for part in name.split(".")):
        return
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [item for item in exported if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_core_imports_no_adapter_framework_or_client() -> None:
    forbidden = ("starlette", "uvicorn", "aiohttp", "sqlalchemy", "torch", "sentence_transformers")
    for path in (SRC / "core").glob("*.py"):
        for module in _imports(path):
            assert not module.startswith(forbidden), f"{path.name} imports {module}"
            if module.startswith("interlace."):
                assert module.startswith("interlace.core"), f"{path.name} imports {module}"


def test_nothing_below_the_app_imports_the_app() -> None:
    allowed = {SRC / "cli"}
    for path in SRC.rglob("*.py"):
        if any(parent in allowed for parent in path.parents) or path == SRC / "gateway" / "app.py":
            continue
        assert "interlace.gateway.app" not in _imports(path), f"{path} imports the app module"


def test_package_init_reexports_match_submodules() -> None:
    from interlace import config, providers, routing  # noqa: PLC0415

    for package in (config, routing):
        for name in package.__all__:
            assert getattr(package, name).__module__.startswith(package.__name__)
    assert providers.__all__ == []
