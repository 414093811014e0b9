"""The method registry: ``@register_method("name")`` on a :class:`~benchmark.contract.method.Method` subclass.

Every module under ``baselines/`` and ``personaplug/`` is imported on first lookup, so adding a method is one
file + one YAML (``configs/methods/<name>.yaml``) + the decorator line: no list to edit.
"""
from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from benchmark.contract.method import Method

_REGISTRY: dict[str, type["Method"]] = {}
_PACKAGES = ("baselines", "personaplug")
_discovered = False


def register_method(name: str) -> Callable[[type["Method"]], type["Method"]]:
    def deco(cls: type["Method"]) -> type["Method"]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"method {name!r} registered twice ({_REGISTRY[name].__module__} and {cls.__module__})")
        _REGISTRY[name] = cls
        cls.name = name
        return cls
    return deco


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    for pkg_name in _PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for info in pkgutil.iter_modules(pkg.__path__):
            importlib.import_module(f"{pkg_name}.{info.name}")


def get_method(name: str) -> type["Method"]:
    _discover()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown method {name!r}.{hint} Registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def method_names() -> list[str]:
    _discover()
    return sorted(_REGISTRY)
