"""What ``spawn()`` and ``pipeline()`` give, for the type checker.

Never run: ``tests/test_typing.py`` runs ``mypy --strict`` on this file, and
each ``assert_type`` fails the check if an overload gives another type.
"""

from __future__ import annotations

import subprocess
import sys

import trioproc

if sys.version_info >= (3, 11):
    from typing import assert_type
else:  # only ever type-checked, never imported
    from typing_extensions import assert_type


async def stream_mode() -> None:
    """Stream mode with the default fds: all three streams are there."""
    async with trioproc.spawn(["cat"]) as child:
        assert_type(child.stdin, trioproc.StdinStream)
        assert_type(child.stdout, trioproc.OutputStream)
        assert_type(child.stderr, trioproc.OutputStream)
        assert_type(child.pid, int | None)
    async with trioproc.spawn(["cat"], None, cwd="/", kill_after=1.0) as child:
        assert_type(child.stdout, trioproc.OutputStream)


def takes_a_transport(transport: trioproc.ProcessTransport) -> None:
    """Code written for the public transport type."""


async def still_a_process_transport() -> None:
    """The stream-mode view is a `ProcessTransport`: helpers that take one
    accept it."""
    async with trioproc.spawn(["cat"]) as child:
        takes_a_transport(child)


async def pty_mode() -> None:
    """On a pty the terminal is stdin and stdout; there is no stderr."""
    async with trioproc.spawn(["sh"], pty=True) as child:
        assert_type(child.stdin, trioproc.StdinStream)
        assert_type(child.stdout, trioproc.OutputStream)
        assert_type(child.stderr, None)
    async with trioproc.spawn(["sh"], pty=(24, 80)) as child:
        assert_type(child.stdout, trioproc.OutputStream)


async def other_modes() -> None:
    """A protocol, *child_fds* or a redirection may leave a stream out."""
    async with trioproc.spawn(["cat"], trioproc.ProcessProtocol()) as transport:
        assert_type(transport, trioproc.ProcessTransport)
        assert_type(transport.stdout, trioproc.OutputStream | None)
    async with trioproc.spawn(["cat"], child_fds={0: "w"}) as transport:
        assert_type(transport.stdout, trioproc.OutputStream | None)
    async with trioproc.spawn(["cat"], stderr=subprocess.STDOUT) as transport:
        assert_type(transport.stderr, trioproc.OutputStream | None)


async def pipeline_ends() -> None:
    """An entered pipeline has both ends; after the block, its statuses."""
    async with trioproc.pipeline([["ls"], ["sort"]]) as p:
        assert_type(p.stdin, trioproc.StdinStream)
        assert_type(p.stdout, trioproc.OutputStream)
    assert_type(p.returncodes, list[int | None])
    block = trioproc.pipeline([["ls"]])
    assert_type(block.stdout, trioproc.OutputStream | None)
