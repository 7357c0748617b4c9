"""Readiness: when a supervised child counts as started.

The checks (`ready_on_output`, `ready_on_port`, `ready_on_notify`) are async
callables given the `SupervisedChild`; `until_ready` races one against the
child's end and its ``ready_timeout``, and says which came first.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeAlias, final

import attrs
import trio

from .._errors import ChildNotReady
from .._options import is_port
from .._ssh import host_name

if TYPE_CHECKING:
    from ._child import SupervisedChild

__all__ = [
    "NotifyReady",
    "ReadyCheck",
    "ready_on_notify",
    "ready_on_output",
    "ready_on_port",
    "until_ready",
]

ReadyCheck: TypeAlias = "Callable[[SupervisedChild], Awaitable[object]]"


def ready_on_output(pattern: bytes | str | re.Pattern[bytes]) -> ReadyCheck:
    """Ready once the child prints a line (stdout or stderr) matching *pattern*."""
    regex = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)

    async def check(child: SupervisedChild) -> None:
        await child.wait_for_output(regex)

    check.__qualname__ = f"ready_on_output({regex.pattern!r})"
    return check


def ready_on_port(
    port: int, host: str | None = None, *, every: float = 0.05
) -> ReadyCheck:
    """Ready once a TCP connection to *host*:*port* succeeds (tried every
    *every* seconds). *host* defaults to the child's own: the host name of
    its ``host=`` for a remote child (an ssh_config alias is not followed),
    else 127.0.0.1."""
    if not is_port(port):
        if isinstance(port, bool) or not isinstance(port, int):
            raise TypeError(f"port must be an int, not {type(port).__name__}")
        raise ValueError(f"port must be from 1 to 65535, not {port!r}")

    async def check(child: SupervisedChild) -> None:
        target = host
        if target is None:
            remote = child.spec.host
            target = "127.0.0.1" if remote is None else host_name(remote)
        while True:
            try:
                stream = await trio.open_tcp_stream(target, port)
            except OSError:
                await trio.sleep(every)
                continue
            await stream.aclose()
            return

    check.__qualname__ = f"ready_on_port({port})"
    return check


@final
@attrs.frozen
class NotifyReady:
    """The ready check `ready_on_notify` returns: the supervisor gives a
    child with this check a notify socket."""

    async def __call__(self, child: SupervisedChild) -> None:
        await child._until_notified_ready()

    def __repr__(self) -> str:
        return "ready_on_notify()"


def ready_on_notify() -> ReadyCheck:
    """Ready once the child sends ``READY=1`` by systemd's ``sd_notify``
    protocol, as a ``Type=notify`` service does.

    The child gets ``NOTIFY_SOCKET``: an ``AF_UNIX`` datagram socket of this
    life alone, in a private temporary directory. Only messages whose sender
    (as the kernel reports it) is the child, or a process in the child's
    process group, count -- so ``sd_notify()``, ``systemd-notify --ready``
    run from the child's shell script, and any helper it starts can report
    for it, and no other child can. ``STATUS=`` text is kept as
    `SupervisedChild.status`. Works with process children only.
    """
    return NotifyReady()


async def until_ready(child: SupervisedChild) -> None:
    """Run the child's ready check, racing its end and its ready_timeout."""
    check = child.spec.ready
    if check is None:
        await trio.lowlevel.checkpoint()
        return
    ended = child._ended
    outcome: list[str] = []
    failure: list[Exception] = []
    with trio.move_on_after(child.spec.ready_timeout):
        async with trio.open_nursery() as race:

            async def ready() -> None:
                try:
                    await check(child)
                except Exception as exc:
                    failure.append(exc)
                    outcome.append("failed")
                else:
                    outcome.append("ready")
                race.cancel_scope.cancel()

            async def exited() -> None:
                await ended.wait()
                outcome.append("exited")
                race.cancel_scope.cancel()

            race.start_soon(ready)
            race.start_soon(exited)
    if outcome[:1] == ["ready"]:
        return
    if outcome[:1] == ["exited"]:
        code = child.returncode
        raise ChildNotReady(
            f"{child.name} exited ({code}) before it was ready", child.name, code
        )
    if outcome[:1] == ["failed"]:
        raise ChildNotReady(
            f"{child.name}'s ready check failed: {failure[0]!r}", child.name
        ) from failure[0]
    raise ChildNotReady(
        f"{child.name} was not ready within {child.spec.ready_timeout:g}s",
        child.name,
    )
