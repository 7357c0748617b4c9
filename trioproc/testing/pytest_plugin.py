"""The pytest plugin that installing trioproc registers (entry point
``pytest11``): it provides the ``fake_spawn`` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._spawner import FakeSpawner

__all__ = ["fake_spawn"]


@pytest.fixture
def fake_spawn() -> Iterator[FakeSpawner]:
    """Scripted children: ``trioproc.spawn`` and ``trioproc.run`` start no
    process during the test.

    ::

        async def test_backup(fake_spawn):
            fake_spawn.register(["rsync", "src/", "dst/"], stdout=b"sent 3\\n")
            assert await backup() == 3
            assert fake_spawn.calls == [["rsync", "src/", "dst/"]]
    """
    spawner = FakeSpawner()
    with spawner.installed():
        yield spawner
