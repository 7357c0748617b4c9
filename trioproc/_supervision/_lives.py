"""The lives of one supervisor's children: a life brought up and waited
for until it is ready, a life run to its end, the policy's decisions about an
end carried out (group restarts, for callers still waiting), a life stopped.

`Supervisor` owns the block and the public operations; it hands the children
to `Lives`, which does all that happens to them between start and shutdown.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Final, final

import attrs
import trio

from .._errors import ChildNotReady, RestartIntensityExceeded
from ._child import SupervisedChild, live_process, live_task
from ._policy import Decision, GiveUp, NoRestart, Restart, RestartPolicy
from ._readiness import until_ready
from ._spec import EventKind, EventSink, OutputSink, SupervisorEvent, describe

__all__ = ["Lives"]

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
@attrs.define(eq=False)
class Lives:
    """The children of one `Supervisor`, and everything that happens to them.

    Attributes:
      policy: the pure rules: who is supervised, what to restart.
      on_output, on_event: the supervisor's sinks.
      children: every child, by name, in first-start order.
      inner: the nursery the lives run in (set once the block is entered).
      block: the cancel scope of the supervisor's block (giving up cancels it).
      closing: the supervisor is shutting down: an end is not acted on.
      gave_up: why the supervisor gave up, once it has.
      pending: the cancel scopes of restarts under way (shutdown cancels them).
    """

    policy: RestartPolicy
    on_output: OutputSink | None
    on_event: EventSink | None
    children: dict[str, SupervisedChild] = attrs.field(init=False, factory=dict)
    inner: trio.Nursery | None = attrs.field(init=False, default=None)
    block: trio.CancelScope | None = attrs.field(init=False, default=None)
    closing: bool = attrs.field(init=False, default=False)
    gave_up: RestartIntensityExceeded | None = attrs.field(init=False, default=None)
    pending: set[trio.CancelScope] = attrs.field(init=False, factory=set)
    # The bring_up call that owns a child's current start (its end before it
    # is ready is that call's to report), by a token.
    _bringing_up: dict[SupervisedChild, object] = attrs.field(init=False, factory=dict)
    # The start() or restart() call waiting for a child.
    _waiters: dict[SupervisedChild, _Waiter] = attrs.field(init=False, factory=dict)
    # A restart of a child waiting in its backoff.
    _pending_restarts: dict[SupervisedChild, trio.CancelScope] = attrs.field(
        init=False, factory=dict
    )
    _group_lock: trio.Lock = attrs.field(init=False, factory=trio.Lock)

    def drop_pending_restart(self, child: SupervisedChild) -> None:
        """Drop *child*'s restart waiting in its backoff, if any."""
        scope = self._pending_restarts.pop(child, None)
        if scope is not None:
            scope.cancel()

    # --- lives of children -----------------------------------------------

    async def bring_up_for_caller(self, child: SupervisedChild) -> None:
        """`bring_up` for `Supervisor.start` and `Supervisor.restart`: return
        once *child* is ready, though group restarts stop it meanwhile.

        A group restart that stops the child before this call returned starts
        it again with the group (`_restart`); this call then waits for that
        life instead, and raises what the group's attempt raised. When it
        returns, no group restart has stopped the child since it was ready.
        """
        waiter = self._waiters[child] = _Waiter()
        try:
            try:
                await self.bring_up(child)
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
                    await self.stop(child)
            raise
        finally:
            if self._waiters.get(child) is waiter:
                del self._waiters[child]

    async def bring_up(self, child: SupervisedChild) -> None:
        """Start a life of *child* and wait until it is ready.

        A child that ends before it is ready is this call's to report (as
        `ChildNotReady`), not its life's: the life does not ask the policy.
        """
        assert self.inner is not None
        if child._alive:
            return  # alive already: never two lives at once
        # A token, not a flag: a group restart may start the next life while
        # this call is still unwinding from the life it stopped.
        token = self._bringing_up[child] = object()
        try:
            await self.inner.start(self._life, child)
            try:
                await until_ready(child)
                if not self.policy.supervises(child.name):
                    raise ChildNotReady(
                        f"{child.name} was stopped for good while it started",
                        child.name,
                    )
            except BaseException:
                # Not ready, or the caller was cancelled: a life that is not
                # handed over must not go on unsupervised.
                with trio.CancelScope(shield=True):
                    await self.stop(child)
                raise
        finally:
            if self._bringing_up.get(child) is token:
                del self._bringing_up[child]
        if child._ended.is_set():
            if child._ended_by_itself:
                # Ready, then ended before we got here: an ordinary end,
                # which its life left to us.
                self.inner.start_soon(self._after_end, child, child.returncode)
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
        self.emit("ready", child)

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
        # Left by an exception from outside the life: its start() was
        # cancelled as it began (trio then leaves this task in start()).
        interrupted = True
        try:
            with scope:
                if child.spec.argv is not None:
                    error = await live_process(child, self.on_output, running)
                else:
                    returncode, error = await live_task(child, running)
            interrupted = False
        finally:
            stopped = (
                child._stop_asked
                or scope.cancelled_caught
                or self.closing
                or interrupted
            )
            returncode = child._finish(returncode, by_itself=started and not stopped)
            child._failure = error
            if started:
                self.policy.stopped(child.name)
            if started and stopped:
                self.emit("stopped", child, returncode=returncode)
        if started and not stopped:
            self.emit("exited", child, returncode=returncode, error=error)
            if child in self._bringing_up:
                return  # _bring_up deals with it (ChildNotReady, or _after_end)
            await self._after_end(child, returncode)

    async def _after_end(self, child: SupervisedChild, returncode: int | None) -> None:
        """*child* ended by itself: ask the policy, and do what it says."""
        if not self.policy.supervises(child.name) or self.closing:
            await trio.lowlevel.checkpoint()
            return
        failed = returncode != 0 or child._watchdog_expired
        decision = self.policy.exited(child.name, trio.current_time(), failed=failed)
        await self._act(child, decision, child._failure)

    def _running(self, child: SupervisedChild) -> None:
        child._mark_running(trio.current_time())
        self.policy.started(child.name, trio.current_time())
        self.emit("started", child)
        if not self.policy.supervises(child.name):
            # Stopped for good (`stop`) while this life was starting.
            child._cancel()

    async def _act(
        self, child: SupervisedChild, decision: Decision, error: BaseException | None
    ) -> None:
        """Carry out what the policy decided about *child*'s end (*error*:
        the exception it ended by, if any)."""
        # Children whose start() or restart() still waits, stopped by these
        # restarts and owed a new life (or an answer) by them.
        owed: dict[SupervisedChild, _Waiter] = {}
        try:
            while True:
                if isinstance(decision, NoRestart):
                    return
                if isinstance(decision, GiveUp):
                    self._give_up(child, decision, error)
                    return
                assert isinstance(decision, Restart)
                failed = await self._restart(child, decision, owed)
                if failed is None:
                    return
                child, decision, error = failed
        finally:
            for other in list(owed):
                _not_again(owed, other, "which did not start it again")

    async def _restart(
        self,
        child: SupervisedChild,
        decision: Restart,
        owed: dict[SupervisedChild, _Waiter],
    ) -> tuple[SupervisedChild, Decision, BaseException] | None:
        """Stop, wait, start; if a start failed, return the child, the next
        decision and why it failed.

        A child stopped here while its `start` or `restart` call still waits
        is started again here in its place, for that call (*owed*); whether
        it came up or not is that call's to report, not the policy's.
        """
        scope = trio.CancelScope()
        self.pending.add(scope)
        if not decision.stop:
            self._pending_restarts[child] = scope
        try:
            with scope:
                async with (
                    self._group_lock if decision.stop else contextlib.nullcontext()
                ):
                    self.emit("restarting", child, delay=decision.delay)
                    for name in decision.stop:
                        if name not in self.children:
                            continue  # its start failed since the decision
                        other = self.children[name]
                        waiter = self._waiters.get(other)
                        if waiter is not None and other._alive and other not in owed:
                            waiter.owed += 1
                            waiter.taken = True
                            owed[other] = waiter
                        await self.stop(other)
                    for other in list(owed):
                        if other.name not in decision.start:  # temporary, or forgotten
                            _not_again(owed, other, "which does not start it again")
                    await trio.sleep(decision.delay)
                    for name in decision.start:
                        if not self.policy.supervises(name):
                            # Stopped for good meanwhile, or its start failed.
                            for other in [o for o in owed if o.name == name]:
                                _not_again(owed, other, "and then stopped")
                            continue
                        other = self.children[name]
                        waiter = owed.pop(other, None)
                        other.restarts += 1
                        try:
                            await self.bring_up(other)
                        except Exception as exc:  # it could not be started
                            if waiter is not None:
                                # Its caller's failed start: unsupervised.
                                self.policy.remove(name)
                                waiter.settle(exc)
                                continue
                            if not isinstance(exc, ChildNotReady):
                                self.emit("exited", other, error=exc)
                            if not self.policy.supervises(name):
                                continue  # stopped for good meanwhile
                            now = trio.current_time()
                            decided = self.policy.exited(name, now, failed=True)
                            return other, decided, exc
                        if waiter is not None:
                            waiter.settle(None)
                            if not self.policy.supervises(name):
                                # Its caller was cancelled as it came up.
                                await self.stop(other)
        finally:
            self.pending.discard(scope)
            if self._pending_restarts.get(child) is scope:
                del self._pending_restarts[child]
        return None

    async def stop(self, child: SupervisedChild) -> None:
        """End *child*'s current life, if it has one; return once it ended."""
        child._cancel()
        await child._ended.wait()

    def _give_up(
        self, child: SupervisedChild, decision: GiveUp, error: BaseException | None
    ) -> None:
        """Too many restarts: note why (the last failure's *error*, if it
        was an exception, is the cause), and cancel the supervisor's block."""
        if self.gave_up is not None:
            return
        count = decision.restarts
        message = (
            f"{count} {'restart' if count == 1 else 'restarts'} needed within "
            f"{decision.seconds:g}s, more than max_restarts="
            f"{self.policy.max_restarts} allows (last: {child.name}); giving up"
        )
        self.gave_up = RestartIntensityExceeded(message)
        self.gave_up.__cause__ = error
        self.emit("gave_up", child, message=message)
        assert self.block is not None
        self.block.cancel()

    # --- events --------------------------------------------------------------

    def emit(
        self,
        kind: EventKind,
        child: SupervisedChild,
        *,
        returncode: int | None = None,
        error: BaseException | None = None,
        delay: float | None = None,
        message: str = "",
    ) -> None:
        """Log an event, and hand it to *on_event*."""
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
        # A task's failure goes to the log with its traceback, the one place
        # its frames are kept (a program's failure to start needs none).
        trace = error if child.spec.argv is None else None
        logger.log(_LEVELS.get(kind, logging.INFO), "%s", message, exc_info=trace)
        if self.on_event is not None:
            self.on_event(event)
