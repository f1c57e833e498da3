"""The project's tasks: ``nox`` runs lint, typecheck and tests; ``nox -s bench`` the benchmarks,
``nox -s fuzz`` the long property, stateful and fuzz runs.

Every session installs the locked workspace (``uv.lock``) into its own
virtualenv with uv, so a run on a fresh machine matches the lock file.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

#: The sans-IO core: it must be fully covered (branches included) by its own tests.
SANS_IO_CORE = ",".join(
    f"packages/blackbox-protocol/src/blackbox_protocol/{module}.py"
    for module in (
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
)


def _sync(session: nox.Session) -> None:
    session.run_install(
        "uv",
        "sync",
        "--locked",
        "--all-packages",
        "--group",
        "dev",
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
    )


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: lint rules and formatting."""
    _sync(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Mypy, strict, over the packages, tests, benchmarks and this file."""
    _sync(session)
    session.run("mypy")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite, with 100% branch coverage required of the sans-IO core."""
    _sync(session)
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "report", "--fail-under=100", f"--include={SANS_IO_CORE}")


@nox.session
def fuzz(session: nox.Session) -> None:
    """The core's property and stateful tests with ten times the examples, then 200k fuzzed frames.

    ``nox -s fuzz -- --seed N`` replays the frame fuzzer's run of seed ``N``.
    """
    _sync(session)
    session.run(
        "pytest",
        "-p",
        "no:cacheprovider",
        "--hypothesis-show-statistics",
        "tests/blackbox_protocol",
        env={"BLACKBOX_FUZZ": "1"},
    )
    session.run(
        "python", "-m", "tests.blackbox_protocol._fuzz", "--frames", "200000", *session.posargs
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: figures printed beside a baseline measured in the same run."""
    _sync(session)
    for script in (
        "receive_path",
        "chat_roundtrip",
        "event_queue",
        "chat_capacity",
        "voice_setup",
        "voice_capacity",
        "voice_latency",
        "soak",
        "shared_server",
        "echo_cancellation",
    ):
        session.run("python", f"bench/{script}.py", *session.posargs)
