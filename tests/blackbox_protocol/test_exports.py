"""The public surface of ``blackbox_protocol``: what ``__all__`` promises exists."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType
from typing import Final

import blackbox_protocol
import pytest

#: The public modules; each declares ``__all__``.
PUBLIC_MODULES: Final = ("messages", "events", "errors", "connection", "media")


def module(name: str) -> ModuleType:
    return importlib.import_module(f"blackbox_protocol.{name}")


def declared(mod: ModuleType) -> list[str]:
    names = vars(mod).get("__all__")
    assert names is not None, f"{mod.__name__} declares no __all__"
    assert isinstance(names, list | tuple)
    assert all(isinstance(name, str) for name in names)
    return list(names)


def test_package_all_names_exist() -> None:
    names = declared(blackbox_protocol)
    assert names
    missing = [name for name in names if not hasattr(blackbox_protocol, name)]
    assert missing == []


def isort_key(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps ``__all__`` in: CONSTANTS, then Classes, then functions."""
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def test_isort_key_orders_like_ruff() -> None:
    names = ["encode", "Call", "DEFAULT_SERVER", "AnswerReceived", "RU_SERVER", "decode"]
    assert sorted(names, key=isort_key) == [
        "DEFAULT_SERVER",
        "RU_SERVER",
        "AnswerReceived",
        "Call",
        "decode",
        "encode",
    ]


def test_package_all_is_sorted_and_unique() -> None:
    names = declared(blackbox_protocol)
    assert len(set(names)) == len(names)
    assert names == sorted(names, key=isort_key)


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from blackbox_protocol import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == set(blackbox_protocol.__all__)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_public_module_all_names_exist(name: str) -> None:
    mod = module(name)
    names = declared(mod)
    assert names
    assert len(set(names)) == len(names)
    missing = [each for each in names if not hasattr(mod, each)]
    assert missing == []


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_public_module_all_has_no_private_names(name: str) -> None:
    assert [each for each in declared(module(name)) if each.startswith("_")] == []


def submodules() -> list[ModuleType]:
    """Every module of the package (the driver's too), imported."""
    return [module(info.name) for info in pkgutil.iter_modules(blackbox_protocol.__path__)]


def test_package_reexports_are_the_module_objects() -> None:
    # A name the package exports is the very object a module of the package
    # exports under that name, not a copy (``isinstance`` and ``except`` depend
    # on it). ``Event`` is exported by two modules: the wire message and the
    # base of the app's events.
    owners: dict[str, list[object]] = {}
    for mod in submodules():
        for each in vars(mod).get("__all__", ()):
            owners.setdefault(each, []).append(getattr(mod, each))
    unowned = [each for each in blackbox_protocol.__all__ if each not in owners]
    assert unowned == []
    for each in blackbox_protocol.__all__:
        value = getattr(blackbox_protocol, each)
        assert any(value is owner for owner in owners[each]), each
    # The package's ``Event`` is the app event: what apps match on.
    assert blackbox_protocol.Event is module("events").Event


def test_package_exports_every_public_exception_and_event() -> None:
    # Apps catch the errors and match on the events: each must be importable from
    # the package itself, not only from its submodule.
    errors, events = module("errors"), module("events")
    classes = [
        each
        for mod in (errors, events)
        for each in declared(mod)
        if inspect.isclass(getattr(mod, each))
    ]
    assert classes
    missing = [each for each in classes if each not in blackbox_protocol.__all__]
    assert missing == []


def test_exported_classes_are_defined_in_the_package() -> None:
    for name in blackbox_protocol.__all__:
        value = getattr(blackbox_protocol, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__.startswith("blackbox_protocol."), name


def test_the_driver_event_and_the_media_error_are_exported() -> None:
    # The driver's own event and the voice error: an app matches on them.
    assert blackbox_protocol.EventsDropped is module("events").EventsDropped
    assert issubclass(blackbox_protocol.EventsDropped, blackbox_protocol.Event)
    assert blackbox_protocol.EventsDropped(3).count == 3
    assert blackbox_protocol.MediaNotConnected is module("errors").MediaNotConnected
    assert issubclass(blackbox_protocol.MediaNotConnected, blackbox_protocol.MediaError)
    assert blackbox_protocol.MediaNotConnected("why", seconds=2).seconds == 2
