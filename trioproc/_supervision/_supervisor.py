"""`Supervisor`: fleets of children -- processes, tasks, nested supervisors --
restarted by Erlang/OTP's rules, brought up in order, stopped completely.

The rules themselves live in `trioproc._supervision._policy` (pure, tested
without processes): who is supervised, in what order, what to restart, and in
what order to shut down. This module carries them out with Trio.

Structure: the children live in an inner nursery hosted under a shielded
scope, so that cancelling the user's block (a cancellation from outside, or
the supervisor giving up) does not stop them all at once: leaving the block
runs an orderly shutdown -- reverse start order or all together, each child
with SIGTERM to its process group and SIGKILL after its own ``kill_after``,
everything under one overall deadline -- and only then closes the nursery.

What happens to the children between start and shutdown -- bringing one up,
its lives, restarts -- is `trioproc._supervision._lives.Lives`.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any, final

import trio

from .._options import (
    DEFAULT_MAX_RESTARTS,
    DEFAULT_MAX_SECONDS,
    DEFAULT_SHUTDOWN_TIMEOUT,
)
from .._util import exit_nursery
from ._child import SupervisedChild
from ._lives import Lives
from ._policy import RestartPolicy, Shutdown, Strategy, check_seconds
from ._spec import ChildSpec, EventSink, OutputSink, print_lines

if sys.version_info < (3, 11):  # pragma: no cover - trio requires it there
    from exceptiongroup import (  # type: ignore[import-not-found,unused-ignore]
        BaseExceptionGroup,
    )

__all__ = ["Supervisor", "is_supervised"]


@final
class Supervisor:
    """Supervise children by Erlang/OTP's rules, in an ``async with`` block.

    ::

        async with trioproc.Supervisor("one_for_one", max_restarts=3) as sup:
            await sup.start(trioproc.ChildSpec("web", argv=[...],
                            ready=trioproc.ready_on_port(8000)))
            await trio.sleep_forever()

    Args:
      strategy: ``"one_for_one"``, ``"one_for_all"`` or ``"rest_for_one"``.
      max_restarts, max_seconds: more restarts than *max_restarts* within
        *max_seconds* and the supervisor stops everything and raises
        `RestartIntensityExceeded` out of the block.
      shutdown: ``"reverse"`` stops children in reverse start order, one at a
        time; ``"parallel"`` stops them all at once.
      shutdown_timeout: the deadline for the whole shutdown; children still
        running then are killed (SIGKILL to their process groups).
      on_output: ``(name, fd, line)`` for each line a process child writes;
        by default `print_lines`; ``None`` discards. Ready checks on output
        work either way.
      on_event: called with each `SupervisorEvent`; every event is also
        logged on the ``trioproc.supervisor`` logger.

    Leaving the block (normally, by an exception, or by a cancellation)
    stops every child; the block returns only when every process is reaped.

    A child still starting when its group restarts: with ``"one_for_all"``
    or ``"rest_for_one"``, a sibling's crash while `start` (or `restart`)
    waits for a child's ready check restarts that child with the group, as
    Erlang/OTP's strategies restart every child of the group: it is stopped
    with the others and started again in its place in start order, and the
    waiting call goes on waiting -- for that new life -- so that it still
    returns only a child that is running and ready, with no stop asked of
    it since. If that life is not ready either (it exits first, its check
    fails, its ``ready_timeout`` passes), the call raises `ChildNotReady`
    as for a first life and the child is no longer supervised; a
    ``"temporary"`` child, which a group restart does not start again, makes
    the call raise `ChildNotReady` at once. So a crash-looping sibling delays
    a start, and may outlast it only until the restart intensity gives up.
    """

    def __init__(
        self,
        strategy: Strategy = "one_for_one",
        max_restarts: int = DEFAULT_MAX_RESTARTS,
        max_seconds: float = DEFAULT_MAX_SECONDS,
        *,
        shutdown: Shutdown = "reverse",
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        on_output: OutputSink | None = print_lines,
        on_event: EventSink | None = None,
    ) -> None:
        policy = RestartPolicy(strategy, max_restarts, max_seconds, shutdown=shutdown)
        self._shutdown_timeout = check_seconds("shutdown_timeout", shutdown_timeout)
        self._lives = Lives(policy, on_output, on_event)
        self._manager: Any = None
        self._outer: trio.Nursery | None = None
        self._host_scope: trio.CancelScope | None = None

    # --- the block -----------------------------------------------------------

    async def __aenter__(self) -> Supervisor:
        if self._manager is not None:
            raise RuntimeError("this Supervisor was already entered")
        self._manager = trio.open_nursery()
        self._outer = await self._manager.__aenter__()
        try:
            self._lives.inner = await self._outer.start(self._host)
            self._lives.block = self._outer.cancel_scope
            # Entered cancelled, the host gone (see _host): leave at once.
            await trio.lowlevel.checkpoint_if_cancelled()
        except BaseException as exc:
            if self._host_scope is not None:
                self._host_scope.cancel()  # (its shield keeps out ours)
            await self._manager.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def _host(self, task_status: trio.TaskStatus[trio.Nursery]) -> None:
        # Shielded: only an orderly shutdown stops the children, never the
        # cancellation of the block around them.
        with trio.CancelScope(shield=True) as self._host_scope:
            async with trio.open_nursery() as inner:
                task_status.started(inner)
                if trio.lowlevel.current_task().parent_nursery is not self._outer:
                    # The block was entered cancelled: trio left this task
                    # in start(), which waits for it; nothing will use it.
                    return
                await trio.sleep_forever()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        manager = self._manager
        with trio.CancelScope(shield=True):
            await self._shutdown()
        assert self._host_scope is not None
        self._host_scope.cancel()
        gave_up = self._lives.gave_up
        try:
            suppressed = await exit_nursery(manager, exc_type, exc, tb)
        except (BaseExceptionGroup, trio.Cancelled):
            # Several errors, or the cancellation giving up caused: giving up
            # is what leaves the block, caused by the last failure (not by
            # the cancellation that stopped the children).
            if gave_up is not None:
                raise gave_up from gave_up.__cause__
            raise
        if gave_up is not None and (exc is None or isinstance(exc, trio.Cancelled)):
            # (A body error of its own leaves as itself.)
            raise gave_up from gave_up.__cause__
        return suppressed

    # --- public operations ---------------------------------------------------

    async def start(self, spec: ChildSpec) -> SupervisedChild:
        """Start supervising *spec*; return once it runs and, with
        ``spec.ready``, once it is ready.

        A restart of its group meanwhile starts it again, and this call waits
        for that life (see the class doc): the child returned is running and
        ready.

        Raises:
          ValueError: a child of that name is supervised already.
          ChildNotReady: it exited before it was ready, its ready check
            failed, or its ``ready_timeout`` passed -- in its first life or
            in one a group restart started for it -- or it is temporary and
            a group restart stopped it; it has been stopped and is not
            supervised.
          OSError: the program could not be started.

        Cancellation: a child half-started is stopped.
        """
        if not isinstance(spec, ChildSpec):
            raise TypeError(f"start() takes a ChildSpec, not {spec!r}")
        if self._lives.inner is None or self._lives.closing:
            raise RuntimeError("start() needs the supervisor's async with block")
        old = self._lives.children.get(spec.name)
        if old is not None and (
            old.running or self._lives.policy.supervises(spec.name)
        ):
            raise ValueError(f"a child named {spec.name!r} is supervised already")
        child = SupervisedChild(spec, self._lives.policy)
        self._lives.children[spec.name] = child
        self._lives.policy.add(spec.name, spec.restart, spec.backoff)
        try:
            await self._lives.bring_up_for_caller(child)
        except BaseException:
            self._lives.policy.remove(spec.name)
            del self._lives.children[spec.name]
            raise
        return child

    def child(self, name: str) -> SupervisedChild:
        """The child called *name*.

        Raises:
          KeyError: no such child.
        """
        try:
            return self._lives.children[name]
        except KeyError:
            raise KeyError(f"no supervised child named {name!r}") from None

    @property
    def children(self) -> list[SupervisedChild]:
        """Every child, in start order."""
        return list(self._lives.children.values())

    async def stop(self, name: str) -> None:
        """Stop *name* for good (SIGTERM, SIGKILL after its kill_after); it is
        not restarted (a restart waiting in its backoff is dropped), and
        `start` may start a new one under that name."""
        child = self.child(name)
        self._lives.policy.remove(name)
        self._lives.drop_pending_restart(child)
        await self._lives.stop(child)

    async def restart(self, name: str) -> None:
        """Stop *name* and start it again (waiting until it is ready, as
        `start` does, through restarts of its group).

        This restart is asked for: it counts in ``child.restarts`` but not
        against the restart intensity.

        Raises:
          KeyError: no such child.
          RuntimeError: the supervisor is shutting down.
          ChildNotReady, OSError: as for `start`; the child is then no longer
            supervised (`start` may start it again).
        """
        child = self.child(name)
        if self._lives.closing:
            raise RuntimeError("restart() during the supervisor's shutdown")
        if not self._lives.policy.supervises(name):
            self._lives.policy.add(name, child.spec.restart, child.spec.backoff)
        self._lives.drop_pending_restart(child)
        await self._lives.stop(child)
        child.restarts += 1
        try:
            await self._lives.bring_up_for_caller(child)
        except BaseException:
            self._lives.policy.remove(name)
            raise

    async def _shutdown(self) -> None:
        """Stop every child in order, under one deadline; kill the rest."""
        self._lives.closing = True
        for scope in list(self._lives.pending):
            scope.cancel()
        live = {c.name: c for c in self._lives.children.values() if c._alive}
        stages = self._lives.policy.shutdown_order(live)
        with trio.move_on_after(self._shutdown_timeout):
            for stage in stages:
                async with trio.open_nursery() as nursery:
                    for name in stage:
                        nursery.start_soon(self._lives.stop, live[name])
        order = [live[name] for stage in stages for name in stage]
        for child in order:
            child._kill()
            await self._lives.stop(child)


def is_supervised(supervisor: Supervisor, name: str) -> bool:
    """Whether *supervisor* supervises *name* now: started, and neither
    stopped for good nor (a temporary child) ended -- a child that is down
    but supervised is waiting for, or in, its restart."""
    return supervisor._lives.policy.supervises(name)
