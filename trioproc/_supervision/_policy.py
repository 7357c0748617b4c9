"""The supervisor's restart policy: a pure state machine.

No I/O and no clock of its own: the supervisor tells it what happened and
when (`RestartPolicy.started`, `RestartPolicy.stopped`,
`RestartPolicy.exited`), and it answers what to do -- restart which children,
after how long, or give up. What it is told is the one record of which
children run (`RestartPolicy.is_running`; `SupervisedChild.running` reads
it), so no side keeps a copy of the other's. That keeps every
rule here testable with plain synchronous tests, as h11 keeps its protocol
state.

The rules are Erlang/OTP's:

* restart types: ``"permanent"`` children are always restarted,
  ``"transient"`` ones only after a failure (a non-zero exit, a signal, a task
  that raised), ``"temporary"`` ones never;
* strategies: ``"one_for_one"`` restarts the child that ended;
  ``"one_for_all"`` stops every other running child and restarts them all;
  ``"rest_for_one"`` stops the children started after it and restarts it and
  them -- stopping in reverse start order, starting in start order;
* intensity: more than *max_restarts* restarts within *max_seconds* and the
  supervisor gives up;
* shutdown: ``"reverse"`` stops the children one at a time, last started
  first; ``"parallel"`` stops them all at once (`RestartPolicy.shutdown_order`).

Between restarts a child waits an exponential backoff with a cap and jitter
(`Backoff`), which starts again from its first delay once the child has run
for `Backoff.reset_after` seconds.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Iterable
from typing import Final, Literal, TypeAlias, final

import attrs

from .._options import DEFAULT_MAX_RESTARTS, DEFAULT_MAX_SECONDS

__all__ = [
    "Backoff",
    "Decision",
    "GiveUp",
    "NoRestart",
    "Restart",
    "RestartPolicy",
    "RestartType",
    "Shutdown",
    "Strategy",
    "check_seconds",
]

Strategy: TypeAlias = Literal["one_for_one", "one_for_all", "rest_for_one"]
RestartType: TypeAlias = Literal["permanent", "transient", "temporary"]
Shutdown: TypeAlias = Literal["reverse", "parallel"]

STRATEGIES: Final = ("one_for_one", "one_for_all", "rest_for_one")
RESTART_TYPES: Final = ("permanent", "transient", "temporary")


def check_seconds(name: str, value: object) -> float:
    """*value* as a finite number of seconds >= 0.

    Raises:
      TypeError: not a number.
      ValueError: negative, infinite or NaN.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
    return float(value)


def _non_negative(name: str) -> Callable[[object, object, object], None]:
    """An attrs validator: `check_seconds` under *name*."""

    def validate(instance: object, attribute: object, value: object) -> None:
        check_seconds(name, value)

    return validate


@final
@attrs.frozen
class Backoff:
    """How long a child waits before it is restarted.

    The *n*-th restart in a row waits ``initial * factor ** (n - 1)``
    seconds, at most *cap*, moved by up to ``jitter`` of itself either way so
    that children failing together do not restart in lockstep. A child that
    ran for *reset_after* seconds before it ended starts again from *initial*.

    The defaults -- 0.1 s, doubling, capped at 30 s, 10 % jitter, reset after
    10 s up -- follow systemd's short first delay (``RestartSec=100ms``).
    """

    initial: float = attrs.field(default=0.1, validator=_non_negative("initial"))
    factor: float = attrs.field(default=2.0, validator=_non_negative("factor"))
    cap: float = attrs.field(default=30.0, validator=_non_negative("cap"))
    jitter: float = attrs.field(default=0.1, validator=_non_negative("jitter"))
    reset_after: float = attrs.field(
        default=10.0, validator=_non_negative("reset_after")
    )

    def __attrs_post_init__(self) -> None:
        if self.factor < 1:
            raise ValueError(f"factor must be >= 1, not {self.factor!r}")
        if self.jitter > 1:
            raise ValueError(f"jitter must be at most 1 (100 %), not {self.jitter!r}")

    def delay(self, attempt: int, draw: float) -> float:
        """Seconds before restart *attempt* (1, 2, ...); *draw* is in [0, 1)."""
        try:
            growth = self.factor ** (attempt - 1)
        except OverflowError:  # a child that has failed a thousand times
            growth = math.inf
        base = min(self.cap, self.initial * growth) if self.initial else 0.0
        return min(self.cap, max(0.0, base * (1 + self.jitter * (2 * draw - 1))))


@final
@attrs.frozen
class Restart:
    """Stop the children in *stop* (in that order), wait *delay* seconds,
    then start the children in *start* (in that order)."""

    delay: float
    stop: tuple[str, ...]
    start: tuple[str, ...]


@final
@attrs.frozen
class NoRestart:
    """The child stays down (its restart type says so)."""

    name: str


@final
@attrs.frozen
class GiveUp:
    """Too many restarts too fast: stop everything and fail."""

    restarts: int
    seconds: float


Decision: TypeAlias = "Restart | NoRestart | GiveUp"


@attrs.define
class _Child:
    restart: RestartType
    backoff: Backoff
    started_at: float = 0.0
    failures_in_a_row: int = 0


@final
@attrs.define
class RestartPolicy:
    """Decides restarts for one supervisor; see the module doc for the rules.

    Attributes:
      strategy: ``"one_for_one"``, ``"one_for_all"`` or ``"rest_for_one"``.
      max_restarts, max_seconds: more than *max_restarts* restarts within
        *max_seconds* seconds and the policy gives up.
      draw: where jitter comes from (``random.random`` unless a test fixes it).
      shutdown: ``"reverse"`` or ``"parallel"`` (`shutdown_order`).
    """

    strategy: Strategy = "one_for_one"
    max_restarts: int = DEFAULT_MAX_RESTARTS
    max_seconds: float = DEFAULT_MAX_SECONDS
    draw: Callable[[], float] = random.random
    shutdown: Shutdown = "reverse"
    _children: dict[str, _Child] = attrs.field(init=False, factory=dict)
    _restarts: deque[float] = attrs.field(init=False, factory=deque)
    # The children with a life running now: the one record of it (a child
    # forgotten while it is on its way down is still here until it ends).
    _running: set[str] = attrs.field(init=False, factory=set)

    def __attrs_post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"strategy must be one of {STRATEGIES}, not {self.strategy!r}"
            )
        if isinstance(self.max_restarts, bool) or not isinstance(
            self.max_restarts, int
        ):
            raise TypeError(f"max_restarts must be an int, not {self.max_restarts!r}")
        if self.max_restarts < 0:
            raise ValueError(f"max_restarts must be >= 0, not {self.max_restarts}")
        check_seconds("max_seconds", self.max_seconds)
        if self.shutdown not in ("reverse", "parallel"):
            raise ValueError(
                f"shutdown must be 'reverse' or 'parallel', not {self.shutdown!r}"
            )

    @property
    def order(self) -> list[str]:
        """The children, in start order."""
        return list(self._children)

    def supervises(self, name: str) -> bool:
        """Whether *name* is supervised: added, and not removed since."""
        return name in self._children

    def add(self, name: str, restart: RestartType, backoff: Backoff) -> None:
        """Supervise *name* from now on, last in start order."""
        if restart not in RESTART_TYPES:
            raise ValueError(f"restart must be one of {RESTART_TYPES}, not {restart!r}")
        self._children[name] = _Child(restart, backoff)

    def remove(self, name: str) -> None:
        """Forget *name* (stopped for good, or a temporary child that ended)."""
        self._children.pop(name, None)

    def is_running(self, name: str) -> bool:
        """Whether a life of *name* is running: `started`, and neither
        `stopped` nor `exited` since (supervised or not)."""
        return name in self._running

    def started(self, name: str, now: float) -> None:
        """*name* is running since *now* (supervised, or removed while it
        started: it runs until it is stopped)."""
        child = self._children.get(name)
        if child is not None:
            child.started_at = now
        self._running.add(name)

    def stopped(self, name: str) -> None:
        """*name*'s life ended -- stopped by the supervisor, or ended by
        itself -- and it is no longer running: no decision (the supervisor
        asks `exited` for an end it acts on). Nothing else to note if it is
        no longer supervised."""
        self._running.discard(name)

    def shutdown_order(self, live: Iterable[str]) -> list[tuple[str, ...]]:
        """The stages in which to stop the *live* children at shutdown: each
        stage is stopped (all its children at once) before the next begins.

        ``"reverse"``: one child per stage, last started first;
        ``"parallel"``: one stage. Live children no longer supervised (their
        stop is under way already) come first, in the order given.
        """
        names = list(live)
        rank = {name: i for i, name in enumerate(self._children)}
        unsupervised = [name for name in names if name not in rank]
        supervised = sorted((n for n in names if n in rank), key=rank.__getitem__)
        order = unsupervised + supervised[::-1]
        if self.shutdown == "parallel":
            return [tuple(order)] if order else []
        return [(name,) for name in order]

    def exited(self, name: str, now: float, *, failed: bool) -> Decision:
        """*name* ended by itself at *now*; *failed* unless it exited cleanly."""
        child = self._children[name]
        self._running.discard(name)
        if child.restart == "temporary" or (
            child.restart == "transient" and not failed
        ):
            if child.restart == "temporary":
                self.remove(name)
            child.failures_in_a_row = 0
            return NoRestart(name)
        self._restarts.append(now)
        while self._restarts and self._restarts[0] < now - self.max_seconds:
            self._restarts.popleft()
        if len(self._restarts) > self.max_restarts:
            return GiveUp(len(self._restarts), self.max_seconds)
        if now - child.started_at >= child.backoff.reset_after:
            child.failures_in_a_row = 0
        child.failures_in_a_row += 1
        delay = child.backoff.delay(child.failures_in_a_row, self.draw())
        order = self.order
        if self.strategy == "one_for_one":
            group = [name]
        elif self.strategy == "one_for_all":
            group = order
        else:
            group = order[order.index(name) :]
        others = [other for other in group if other != name]
        stop = tuple(other for other in reversed(others) if other in self._running)
        start = [name] + [o for o in others if self._children[o].restart != "temporary"]
        for other in others:  # Erlang: a temporary sibling is not brought back
            if self._children[other].restart == "temporary":
                self.remove(other)
        return Restart(delay, stop, tuple(sorted(start, key=order.index)))
