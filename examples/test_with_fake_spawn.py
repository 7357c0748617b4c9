"""An example test a user could copy: testing code that runs commands,
without running them.

What it shows: `deploy()` below is ordinary application code that calls
trioproc.run(). Its tests use the `fake_spawn` fixture, which installing
trioproc provides to pytest: they script each command's output and exit,
check what was run and what it was fed, and test a timeout of 30 seconds in
well under one, by running on Trio's autojump clock.

How to poke it: copy this file into a project that depends on trioproc and
pytest-trio, and run `pytest test_with_fake_spawn.py`.
"""

from __future__ import annotations

import time

import pytest
import trio
import trio.testing

import trioproc

pytestmark = pytest.mark.trio


# --- the code under test ----------------------------------------------------


class DeployError(Exception):
    pass


async def deploy(version: str, *, health_timeout: float = 30.0) -> str:
    """Check out *version*, restart the service, and wait until it is healthy."""
    await trioproc.run(["git", "checkout", "--quiet", version])
    await trioproc.run(["systemctl", "restart", "app"], input=b"confirm\n")
    with trio.move_on_after(health_timeout):
        result = await trioproc.run(["app-healthcheck", "--wait"], check=False)
        if result.returncode == 0:
            return result.stdout.decode().strip()
        raise DeployError(f"unhealthy: {result.stderr.decode().strip()}")
    raise DeployError(f"no answer from the health check in {health_timeout:g}s")


# --- its tests ----------------------------------------------------------------


async def test_a_healthy_deploy(fake_spawn):
    fake_spawn.register(["git", "checkout", "--quiet", "v2.1"])
    fake_spawn.register(["systemctl", "restart", "app"])
    fake_spawn.register(["app-healthcheck", "--wait"], stdout=b"ok: v2.1\n")

    assert await deploy("v2.1") == "ok: v2.1"
    assert fake_spawn.calls == [
        ["git", "checkout", "--quiet", "v2.1"],
        ["systemctl", "restart", "app"],
        ["app-healthcheck", "--wait"],
    ]
    assert fake_spawn.runs[1].stdin == b"confirm\n"


async def test_an_unhealthy_service_is_reported(fake_spawn):
    fake_spawn.register(["git", "checkout", "--quiet", "v2.2"])
    fake_spawn.register(["systemctl", "restart", "app"])
    fake_spawn.register(
        ["app-healthcheck", "--wait"], stderr=b"db down\n", returncode=1
    )

    with pytest.raises(DeployError, match="unhealthy: db down"):
        await deploy("v2.2")


async def test_a_hanging_health_check_times_out_in_no_real_time(
    fake_spawn, autojump_clock
):
    fake_spawn.register(["git", "checkout", "--quiet", "v2.3"])
    fake_spawn.register(["systemctl", "restart", "app"])
    # Never answers, and ignores SIGTERM: it is killed after kill_after.
    fake_spawn.register(["app-healthcheck", "--wait"], delay=3600, ignores_sigterm=True)

    real_start, start = time.monotonic(), trio.current_time()
    with pytest.raises(DeployError, match="no answer from the health check in 30s"):
        await deploy("v2.3")
    assert trio.current_time() - start >= 30  # thirty seconds of Trio's time...
    assert time.monotonic() - real_start < 1  # ...in well under one real second
    assert fake_spawn.runs[2].returncode == -9  # stopped, then killed
