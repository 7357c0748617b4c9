"""Guards for every test.

Every async test runs inside ``trio.fail_after`` (30 s, or the seconds of its
``@pytest.mark.deadline(n)``), and every test is checked for what it leaves
behind: an open fd, or a child process (running or zombie) of this process.

A test of what only the Linux backend does is marked
``@pytest.mark.linux_backend("has no cgroups")``: under
``TRIOPROC_BACKEND=portable`` it is skipped with the reason "the portable
backend has no cgroups".
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trio

from trioproc._os import _backends, _cgroup

from .helpers import children, open_fds

# tests/windows runs under a Windows CPython (`make test-windows`), not here;
# tests/wine_console runs from here, but only once `make test-windows` has set
# Wine up and names its console wrapper.
collect_ignore = ["windows"]
if not os.environ.get("TRIOPROC_WINPY_CONSOLE"):
    collect_ignore.append("wine_console")

DEFAULT_DEADLINE = 30.0


@pytest.fixture(autouse=True)
def _nothing_left_behind() -> Iterator[None]:
    """Fail a test that leaves an fd open, a child process or a cgroup of
    ours behind."""
    fds_before = open_fds()
    children_before = children()
    cgroups_before = our_cgroups()
    yield
    leaked_cgroups = our_cgroups() - cgroups_before
    assert not leaked_cgroups, f"cgroups left behind: {leaked_cgroups}"
    leaked_children = children() - children_before
    leaked_fds = open_fds() - fds_before
    details = {}
    for fd in leaked_fds:
        try:
            details[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            details[fd] = "?"
    assert not leaked_children, f"child processes left behind: {leaked_children}"
    assert not leaked_fds, f"fds left open: {details}"


def our_cgroups() -> set[str]:
    """The cgroups trioproc made in this process's cgroup-v2 cgroup, by this
    process or by one that has gone (a `trioproc` command the test ran); not
    those of other live processes (another suite running beside this one)."""
    try:
        home = _cgroup.own_cgroup()
        names = [p.name for p in home.iterdir() if p.name.startswith("trioproc-")]
    except OSError:  # no cgroup v2 here
        return set()
    mine = str(os.getpid())
    return {
        name
        for name in names
        if (owner := name.split("-")[1]) == mine or not os.path.exists(f"/proc/{owner}")
    }


def _bounded(test: Callable[..., Any], seconds: float) -> Callable[..., Any]:
    @functools.wraps(test)
    async def bounded(*args: Any, **kwargs: Any) -> Any:
        with trio.fail_after(seconds):
            return await test(*args, **kwargs)

    return bounded


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "deadline(seconds): the test's trio.fail_after bound"
    )
    config.addinivalue_line(
        "markers",
        "real_only(reason): a contract test the fake transport cannot mirror",
    )
    config.addinivalue_line(
        "markers",
        "linux_backend(reason): a test of what only the Linux backend does, "
        "skipped under the portable backend ('the portable backend <reason>')",
    )


def portable() -> bool:
    """Whether children start on the portable backend in this run."""
    return _backends.current_backend().name == "portable"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    on_portable = portable()
    for item in items:
        linux_only = item.get_closest_marker("linux_backend")
        if linux_only is not None and on_portable:
            reason = f"the portable backend {linux_only.args[0]}"
            item.add_marker(pytest.mark.skip(reason=reason))
        test = getattr(item, "obj", None)
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(test):
            marker = item.get_closest_marker("deadline")
            seconds = marker.args[0] if marker else DEFAULT_DEADLINE
            item.obj = _bounded(test, seconds)
