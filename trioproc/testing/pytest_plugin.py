"""The pytest plugin that installing trioproc registers (entry point
``pytest11``): it provides the ``fake_spawn`` fixture."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from ._spawner import FakeSpawner

__all__ = ["fake_spawn"]

# Whether a test's own call failed: its unused registrations are then a
# consequence, not news, and are not reported on top of the failure.
_CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Note whether the test's call failed, for ``fake_spawn``'s teardown."""
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


@pytest.fixture
def fake_spawn(request: pytest.FixtureRequest) -> Iterator[FakeSpawner]:
    """Scripted children: ``trioproc.spawn`` and ``trioproc.run`` start no
    process during the test.

    ::

        async def test_backup(fake_spawn):
            fake_spawn.register(["rsync", "src/", "dst/"], stdout=b"sent 3\\n")
            assert await backup() == 3
            assert fake_spawn.calls == [["rsync", "src/", "dst/"]]

    A registration that a passing test never used (see
    `FakeSpawner.unused`) fails it at teardown, naming the command: the code
    no longer runs what the test expects. Set ``fake_spawn.allow_unused =
    True`` where that is intended, or register with ``times=None``.
    """
    spawner = FakeSpawner()
    with spawner.installed():
        yield spawner
    unused = spawner.unused
    failed = request.node.stash.get(_CALL_FAILED, False)
    if unused and not spawner.allow_unused and not failed:
        names = "; ".join(
            f"{command.describe()} ({command.remaining} call(s) left)"
            for command in unused
        )
        pytest.fail(
            f"fake_spawn: registered but never run: {names}. Remove the "
            f"registration, or set fake_spawn.allow_unused = True",
            pytrace=False,
        )
