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

Each life of a child is one task (`Supervisor._life`): it starts the child
(`live_process`, `live_task`), reports it started, waits for its end, and if
nobody asked for that end, asks the policy what to do and does it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from types import TracebackType
from typing import Any, Final, final

import attrs
import trio

from .._errors import ChildNotReady, RestartIntensityExceeded
from .._spawn import exit_nursery
from ._child import SupervisedChild, live_process, live_task
from ._policy import (
    Decision,
    GiveUp,
    NoRestart,
    Restart,
    RestartPolicy,
    Shutdown,
    Strategy,
    check_seconds,
)
from ._readiness import until_ready
from ._spec import (
    ChildSpec,
    EventKind,
    EventSink,
    OutputSink,
    SupervisorEvent,
    describe,
    print_lines,
)

if sys.version_info < (3, 11):  # pragma: no cover - trio requires it there
    from exceptiongroup import (  # type: ignore[import-not-found,unused-ignore]
        BaseExceptionGroup,
    )

__all__ = ["Supervisor", "is_supervised"]

logger: Final = logging.getLogger("trioproc.supervisor")

_LEVELS: Final = {"exited": logging.WARNING, "gave_up": logging.ERROR}


@final
@attrs.define(eq=False)
class _Waiter:
    """A `Supervisor.start` or `Supervisor.restart` call waiting for its child
    to be ready, which group restarts stopped and owe a new life.

    Attributes:
      owed: group restarts that stopped the child and have not yet brought
        it up again (or given up on it).
      taken: whether any group restart did.
      error: why a group restart could not bring it up: the call's to raise.
      news: set (and replaced) whenever *owed* goes down.
    """

    owed: int = 0
    taken: bool = False
    error: Exception | None = None
    news: trio.Event = attrs.field(factory=trio.Event)

    def settle(self, error: Exception | None) -> None:
        """One group restart is done with the child: it is up, or *error*."""
        self.owed -= 1
        if error is not None and self.error is None:
            self.error = error
        self.news.set()
        self.news = trio.Event()


def _not_again(
    owed: dict[SupervisedChild, _Waiter], child: SupervisedChild, why: str
) -> None:
    """The group restart that stopped *child* for its waiting caller will not
    bring it up: that caller raises `ChildNotReady`."""
    waiter = owed.pop(child, None)
    if waiter is not None:
        message = f"{child.name} was stopped by a restart of its group, {why}"
        waiter.settle(ChildNotReady(message, child.name))


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
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        *,
        shutdown: Shutdown = "reverse",
        shutdown_timeout: float = 60.0,
        on_output: OutputSink | None = print_lines,
        on_event: EventSink | None = None,
    ) -> None:
        self._policy = RestartPolicy(
            strategy, max_restarts, max_seconds, shutdown=shutdown
        )
        self._shutdown_timeout = check_seconds("shutdown_timeout", shutdown_timeout)
        self._on_output = on_output
        self._on_event = on_event
        self._children: dict[str, SupervisedChild] = {}
        # The _bring_up call that owns a child's current start (its end
        # before it is ready is that call's to report), by a token.
        self._bringing_up: dict[SupervisedChild, object] = {}
        # The start() or restart() call waiting for a child.
        self._waiters: dict[SupervisedChild, _Waiter] = {}
        # A restart of a child waiting in its backoff.
        self._pending_restarts: dict[SupervisedChild, trio.CancelScope] = {}
        self._pending: set[trio.CancelScope] = set()
        self._group_lock = trio.Lock()
        self._gave_up: RestartIntensityExceeded | None = None
        self._closing = False
        self._manager: Any = None
        self._outer: trio.Nursery | None = None
        self._inner: trio.Nursery | None = None
        self._host_scope: trio.CancelScope | None = None

    # --- the block -----------------------------------------------------------

    async def __aenter__(self) -> Supervisor:
        if self._manager is not None:
            raise RuntimeError("this Supervisor was already entered")
        self._manager = trio.open_nursery()
        self._outer = await self._manager.__aenter__()
        try:
            self._inner = await self._outer.start(self._host)
        except BaseException as exc:
            await self._manager.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def _host(self, task_status: trio.TaskStatus[trio.Nursery]) -> None:
        # Shielded: only an orderly shutdown stops the children, never the
        # cancellation of the block around them.
        with trio.CancelScope(shield=True) as self._host_scope:
            async with trio.open_nursery() as inner:
                task_status.started(inner)
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
        gave_up = self._gave_up
        try:
            suppressed = await exit_nursery(manager, exc_type, exc, tb)
        except (BaseExceptionGroup, trio.Cancelled) as ended:
            # Several errors, or the cancellation giving up caused: giving up
            # is what leaves the block.
            if gave_up is not None:
                raise gave_up from ended
            raise
        if gave_up is not None and (exc is None or isinstance(exc, trio.Cancelled)):
            raise gave_up from exc  # (a body error of its own leaves as itself)
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
        if self._inner is None or self._closing:
            raise RuntimeError("start() needs the supervisor's async with block")
        old = self._children.get(spec.name)
        if old is not None and (old.running or self._policy.supervises(spec.name)):
            raise ValueError(f"a child named {spec.name!r} is supervised already")
        child = SupervisedChild(spec)
        self._children[spec.name] = child
        self._policy.add(spec.name, spec.restart, spec.backoff)
        try:
            await self._bring_up_for_caller(child)
        except BaseException:
            self._policy.remove(spec.name)
            del self._children[spec.name]
            raise
        return child

    def child(self, name: str) -> SupervisedChild:
        """The child called *name*.

        Raises:
          KeyError: no such child.
        """
        try:
            return self._children[name]
        except KeyError:
            raise KeyError(f"no supervised child named {name!r}") from None

    @property
    def children(self) -> list[SupervisedChild]:
        """Every child, in start order."""
        return list(self._children.values())

    async def stop(self, name: str) -> None:
        """Stop *name* for good (SIGTERM, SIGKILL after its kill_after); it is
        not restarted (a restart waiting in its backoff is dropped), and
        `start` may start a new one under that name."""
        child = self.child(name)
        self._policy.remove(name)
        self._drop_pending_restart(child)
        await self._stop(child)

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
        if self._closing:
            raise RuntimeError("restart() during the supervisor's shutdown")
        if not self._policy.supervises(name):
            self._policy.add(name, child.spec.restart, child.spec.backoff)
        self._drop_pending_restart(child)
        await self._stop(child)
        child.restarts += 1
        try:
            await self._bring_up_for_caller(child)
        except BaseException:
            self._policy.remove(name)
            raise

    def _drop_pending_restart(self, child: SupervisedChild) -> None:
        scope = self._pending_restarts.pop(child, None)
        if scope is not None:
            scope.cancel()

    # --- lives of children -----------------------------------------------

    async def _bring_up_for_caller(self, child: SupervisedChild) -> None:
        """`_bring_up` for `start` and `restart`: return once *child* is
        ready, though group restarts stop it meanwhile.

        A group restart that stops the child before this call returned starts
        it again with the group (`_restart`); this call then waits for that
        life instead, and raises what the group's attempt raised. When it
        returns, no group restart has stopped the child since it was ready.
        """
        waiter = self._waiters[child] = _Waiter()
        try:
            try:
                await self._bring_up(child)
            except Exception:
                if not waiter.taken:
                    raise
            while waiter.owed and waiter.error is None:
                await waiter.news.wait()
            if waiter.error is not None:
                raise waiter.error
        except BaseException:
            if waiter.owed:
                # Cancelled while a group restart owes it a life: that life,
                # once started, must not go on unsupervised (the group
                # restart skips it once the caller has forgotten it).
                with trio.CancelScope(shield=True):
                    await self._stop(child)
            raise
        finally:
            if self._waiters.get(child) is waiter:
                del self._waiters[child]

    async def _bring_up(self, child: SupervisedChild) -> None:
        """Start a life of *child* and wait until it is ready.

        A child that ends before it is ready is this call's to report (as
        `ChildNotReady`), not its life's: the life does not ask the policy.
        """
        assert self._inner is not None
        if child._alive:
            return  # alive already: never two lives at once
        # A token, not a flag: a group restart may start the next life while
        # this call is still unwinding from the life it stopped.
        token = self._bringing_up[child] = object()
        try:
            await self._inner.start(self._life, child)
            try:
                await until_ready(child)
            except BaseException:
                # Not ready, or the caller was cancelled: a life that is not
                # handed over must not go on unsupervised.
                with trio.CancelScope(shield=True):
                    await self._stop(child)
                raise
        finally:
            if self._bringing_up.get(child) is token:
                del self._bringing_up[child]
        if child._ended.is_set():
            if child._ended_by_itself:
                # Ready, then ended before we got here: an ordinary end,
                # which its life left to us.
                self._inner.start_soon(self._after_end, child, child.returncode)
            else:
                # Ready, but stopped before we got here: not ready -- unless
                # a group restart stopped it, to start it again for a caller.
                waiter = self._waiters.get(child)
                if waiter is None or not waiter.owed:
                    raise ChildNotReady(
                        f"{child.name} was stopped before it was ready", child.name
                    )
            return
        child._mark_ready(trio.current_time())
        self._emit("ready", child)

    async def _life(
        self, child: SupervisedChild, task_status: trio.TaskStatus[None]
    ) -> None:
        """One life of *child*: start, report started, wait for the end, act."""
        started = False

        def running() -> None:
            nonlocal started
            started = True
            self._running(child)
            task_status.started()

        scope = trio.CancelScope()
        child._begin(scope)
        returncode: int | None = None
        error: BaseException | None = None
        try:
            with scope:
                if child.spec.argv is not None:
                    error = await live_process(child, self._on_output, running)
                else:
                    returncode, error = await live_task(child, running)
        finally:
            stopped = child._stop_asked or scope.cancelled_caught or self._closing
            returncode = child._finish(returncode, by_itself=started and not stopped)
            if started and stopped:
                self._policy.stopped(child.name)
                self._emit("stopped", child, returncode=returncode)
        if started and not stopped:
            self._emit("exited", child, returncode=returncode, error=error)
            if child in self._bringing_up:
                return  # _bring_up deals with it (ChildNotReady, or _after_end)
            await self._after_end(child, returncode)

    async def _after_end(self, child: SupervisedChild, returncode: int | None) -> None:
        """*child* ended by itself: ask the policy, and do what it says."""
        if not self._policy.supervises(child.name) or self._closing:
            await trio.lowlevel.checkpoint()
            return
        failed = returncode != 0 or child._watchdog_expired
        decision = self._policy.exited(child.name, trio.current_time(), failed=failed)
        await self._act(child, decision)

    def _running(self, child: SupervisedChild) -> None:
        child._mark_running(trio.current_time())
        self._policy.started(child.name, trio.current_time())
        self._emit("started", child)

    async def _act(self, child: SupervisedChild, decision: Decision) -> None:
        """Carry out what the policy decided about *child*'s end."""
        # Children whose start() or restart() still waits, stopped by these
        # restarts and owed a new life (or an answer) by them.
        owed: dict[SupervisedChild, _Waiter] = {}
        try:
            while True:
                if isinstance(decision, NoRestart):
                    return
                if isinstance(decision, GiveUp):
                    self._give_up(child, decision)
                    return
                assert isinstance(decision, Restart)
                failed = await self._restart(child, decision, owed)
                if failed is None:
                    return
                child, decision = failed
        finally:
            for other in list(owed):
                _not_again(owed, other, "which did not start it again")

    async def _restart(
        self,
        child: SupervisedChild,
        decision: Restart,
        owed: dict[SupervisedChild, _Waiter],
    ) -> tuple[SupervisedChild, Decision] | None:
        """Stop, wait, start; return the next decision if a start failed.

        A child stopped here while its `start` or `restart` call still waits
        is started again here in its place, for that call (*owed*); whether
        it came up or not is that call's to report, not the policy's.
        """
        scope = trio.CancelScope()
        self._pending.add(scope)
        if not decision.stop:
            self._pending_restarts[child] = scope
        try:
            with scope:
                async with (
                    self._group_lock if decision.stop else contextlib.nullcontext()
                ):
                    self._emit("restarting", child, delay=decision.delay)
                    for name in decision.stop:
                        if name not in self._children:
                            continue  # its start failed since the decision
                        other = self._children[name]
                        waiter = self._waiters.get(other)
                        if waiter is not None and other._alive and other not in owed:
                            waiter.owed += 1
                            waiter.taken = True
                            owed[other] = waiter
                        await self._stop(other)
                    for other in list(owed):
                        if other.name not in decision.start:  # temporary, or forgotten
                            _not_again(owed, other, "which does not start it again")
                    await trio.sleep(decision.delay)
                    for name in decision.start:
                        if not self._policy.supervises(name):
                            # Stopped for good meanwhile, or its start failed.
                            for other in [o for o in owed if o.name == name]:
                                _not_again(owed, other, "and then stopped")
                            continue
                        other = self._children[name]
                        waiter = owed.pop(other, None)
                        other.restarts += 1
                        try:
                            await self._bring_up(other)
                        except Exception as exc:  # it could not be started
                            if waiter is not None:
                                # Its caller's failed start: unsupervised.
                                self._policy.remove(name)
                                waiter.settle(exc)
                                continue
                            if not isinstance(exc, ChildNotReady):
                                self._emit("exited", other, error=exc)
                            now = trio.current_time()
                            return other, self._policy.exited(name, now, failed=True)
                        if waiter is not None:
                            waiter.settle(None)
                            if not self._policy.supervises(name):
                                # Its caller was cancelled as it came up.
                                await self._stop(other)
        finally:
            self._pending.discard(scope)
            if self._pending_restarts.get(child) is scope:
                del self._pending_restarts[child]
        return None

    async def _stop(self, child: SupervisedChild) -> None:
        """End *child*'s current life, if it has one; return once it ended."""
        child._cancel()
        await child._ended.wait()

    def _give_up(self, child: SupervisedChild, decision: GiveUp) -> None:
        if self._gave_up is not None:
            return
        message = (
            f"{decision.restarts} restarts within {decision.seconds:g}s "
            f"(last: {child.name}); giving up"
        )
        self._gave_up = RestartIntensityExceeded(message)
        self._emit("gave_up", child, message=message)
        assert self._outer is not None
        self._outer.cancel_scope.cancel()

    async def _shutdown(self) -> None:
        """Stop every child in order, under one deadline; kill the rest."""
        self._closing = True
        for scope in list(self._pending):
            scope.cancel()
        live = {c.name: c for c in self._children.values() if c._alive}
        stages = self._policy.shutdown_order(live)
        with trio.move_on_after(self._shutdown_timeout):
            for stage in stages:
                async with trio.open_nursery() as nursery:
                    for name in stage:
                        nursery.start_soon(self._stop, live[name])
        order = [live[name] for stage in stages for name in stage]
        for child in order:
            child._kill()
            await self._stop(child)

    # --- events --------------------------------------------------------------

    def _emit(
        self,
        kind: EventKind,
        child: SupervisedChild,
        *,
        returncode: int | None = None,
        error: BaseException | None = None,
        delay: float | None = None,
        message: str = "",
    ) -> None:
        pid = child._last_pid if child.spec.argv is not None else None
        if not message:
            message = describe(
                kind,
                child.name,
                pid=pid,
                returncode=returncode,
                error=error,
                delay=delay,
            )
        event = SupervisorEvent(
            kind,
            child.name,
            pid=pid,
            returncode=returncode,
            error=None if error is None else repr(error),
            delay=delay,
            restarts=child.restarts,
            message=message,
        )
        logger.log(_LEVELS.get(kind, logging.INFO), "%s", message)
        if self._on_event is not None:
            self._on_event(event)


def is_supervised(supervisor: Supervisor, name: str) -> bool:
    """Whether *supervisor* supervises *name* now: started, and neither
    stopped for good nor (a temporary child) ended -- a child that is down
    but supervised is waiting for, or in, its restart."""
    return supervisor._policy.supervises(name)
