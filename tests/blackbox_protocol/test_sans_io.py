"""The core is sans-IO: importing and using it loads no I/O, concurrency or clock library.

Two checks. At run time, in a fresh interpreter, ``import blackbox_protocol``
(and a whole conversation through the core) must not load any I/O framework.
In the source, an ``ast`` scan of the core modules finds no import of those
modules, nor of the clock, randomness or the OS. The driver that joins the
package (``connect()``) may use them: it is imported on first use only, so the
core modules are listed here explicitly.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import blackbox_protocol
import pytest

PACKAGE: Final = Path(blackbox_protocol.__file__).parent

#: The sans-IO modules of the package; the driver's modules are not among them.
CORE_MODULES: Final = (
    "__init__",
    "_codec",
    "_state",
    "connection",
    "errors",
    "events",
    "media",
    "messages",
    "turns",
)

#: Modules that must not be loaded by importing or using the core.
NOT_LOADED: Final = frozenset(
    {
        "asyncio",
        "anyio",
        "trio",
        "websockets",
        "aiortc",
        "socket",
        "ssl",
        "threading",
        "selectors",
        "random",
        "secrets",
        "subprocess",
        "concurrent",
        "multiprocessing",
    }
)
#: Loaded anyway by a dependency, not by the core: attrs imports ``threading``
#: (``attr._compat`` keeps a thread-local for ``repr``). Allowed only while
#: importing the dependencies alone loads it too (checked below).
LOADED_BY_DEPENDENCIES: Final = frozenset({"threading"})

#: Modules the core's source must not import (``time``: the core reads no clock,
#: every call takes ``now``; ``os``, ``uuid``, ``random``: no environment, no
#: randomness, so that runs are reproducible).
NOT_IMPORTED: Final = frozenset(
    {
        "asyncio",
        "anyio",
        "trio",
        "websockets",
        "aiortc",
        "socket",
        "ssl",
        "threading",
        "selectors",
        "random",
        "secrets",
        "time",
        "uuid",
        "os",
        "subprocess",
        "concurrent",
        "multiprocessing",
        "logging",
    }
)


def loaded_after(code: str) -> set[str]:
    """The top-level names of the modules a fresh interpreter has loaded after ``code``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    names: list[str] = json.loads(completed.stdout.splitlines()[-1])
    return {name.split(".")[0] for name in names}


#: A whole chat conversation through both connections, codec included.
CONVERSATION: Final = """
import blackbox_protocol as bp
client = bp.ClientConnection()
server = bp.ServerConnection(now=0.0)
client.initialize("chat", additional_data={"k": [1, 2.5, None]}, now=1.0)
for frame in client.frames_to_send():
    server.receive_frame(frame, now=1.1)
server.accept(job_id="j", now=1.2)
server.request_tool("t1", "lookup", {"q": "x"}, now=1.3)
server.send_text("hi", now=1.4)
for frame in server.frames_to_send():
    client.receive_frame(frame, now=1.5)
client.reply_to_tool("t1", {"ok": True}, now=1.6)
client.send_text("hello", now=1.7)
client.receive_frame("not json", now=1.8)
client.handle_timer(now=100.0)
client.terminate(now=101.0)
for frame in client.frames_to_send():
    server.receive_frame(frame, now=101.1)
server.end(now=101.2)
for frame in server.frames_to_send():
    client.receive_frame(frame, now=101.3)
client.receive_close(1000)
server.receive_close(1000)
events = client.events_received() + server.events_received()
assert isinstance(events[-1], bp.ConnectionClosed), events
assert client.state is bp.ConnectionState.CLOSED
assert client.error is None, client.error
bp.decode(bp.encode(bp.UnknownMessage(unknown_type="x", timestamp="t")))
"""


def test_importing_the_core_loads_no_io_library() -> None:
    loaded = loaded_after("import blackbox_protocol")
    assert "blackbox_protocol" in loaded
    assert loaded & NOT_LOADED <= LOADED_BY_DEPENDENCIES, sorted(loaded & NOT_LOADED)


def test_using_the_core_loads_no_io_library() -> None:
    loaded = loaded_after(CONVERSATION)
    assert loaded & NOT_LOADED <= LOADED_BY_DEPENDENCIES, sorted(loaded & NOT_LOADED)


def test_allowed_modules_come_from_the_dependencies_alone() -> None:
    by_core = loaded_after("import blackbox_protocol") & LOADED_BY_DEPENDENCIES
    by_dependencies = loaded_after("import attrs, cattrs")
    assert by_core <= by_dependencies


def test_the_check_sees_a_driver_import() -> None:
    # The driver is imported on first use: touching ``connect`` loads anyio,
    # which shows that the checks above would see an I/O library being loaded.
    loaded = loaded_after("import blackbox_protocol\nblackbox_protocol.connect")
    assert {"anyio", "websockets"} <= loaded


# The source.


def core_source(name: str) -> ast.Module:
    path = PACKAGE / f"{name}.py"
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Every module ``tree`` imports, with its line: statements anywhere, and
    ``__import__("x")`` / ``import_module("x")`` calls with a literal name."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module is not None:
                yield node.lineno, node.module
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            first = node.args[0]
            literal = isinstance(first, ast.Constant) and isinstance(first.value, str)
            if name in ("__import__", "import_module") and literal:
                assert isinstance(first, ast.Constant)
                yield node.lineno, str(first.value)


def test_core_modules_exist() -> None:
    for name in CORE_MODULES:
        assert (PACKAGE / f"{name}.py").is_file(), name


@pytest.mark.parametrize("name", CORE_MODULES)
def test_core_module_imports_nothing_forbidden(name: str) -> None:
    forbidden = [
        f"line {line}: {module}"
        for line, module in imported_modules(core_source(name))
        if module.split(".")[0] in NOT_IMPORTED
    ]
    assert forbidden == []


def runtime_imports(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """The imports executed at run time: not those under ``if TYPE_CHECKING:``."""
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        ):
            yield from imported_modules(ast.Module(body=node.orelse, type_ignores=[]))
            continue
        yield from imported_modules(node)


@pytest.mark.parametrize("name", CORE_MODULES)
def test_core_module_imports_only_core_modules_of_the_package(name: str) -> None:
    # The driver's modules may import the core, never the other way round
    # (``__init__`` reaches the driver lazily, on first use).
    core = {f"blackbox_protocol.{each}" for each in CORE_MODULES} | {"blackbox_protocol"}
    outside = [
        f"line {line}: {module}"
        for line, module in runtime_imports(core_source(name))
        if module.split(".")[0] == "blackbox_protocol" and module not in core
    ]
    assert outside == []


def test_the_scan_finds_imports() -> None:
    tree = ast.parse(
        "import os.path\n"
        "from time import monotonic\n"
        "def f():\n"
        "    import socket\n"
        "    __import__('random')\n"
        "    importlib.import_module('ssl')\n"
        "from . import x\n"
    )
    assert sorted(module for _, module in imported_modules(tree)) == [
        "os.path",
        "random",
        "socket",
        "ssl",
        "time",
    ]
    guarded = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from blackbox_protocol._call import Call\n"
        "else:\n"
        "    import json\n"
    )
    assert [module for _, module in runtime_imports(guarded)] == ["typing", "json"]
