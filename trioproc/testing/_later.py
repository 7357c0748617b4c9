"""`Later`: the work the fake transport defers, because the real one does it
later, from its tasks.

One rule keeps the fake faithful: the real transport never calls the protocol
from inside a method the protocol called; it does so later, from its tasks.
So what a transport method sets off -- a write end lost after
``closeStdin()``, held output after ``resumeProducing()``, a pull producer's
next turn, the death of a child sent SIGKILL -- waits here until the next
driver call, an ``await`` on the fake, or its ``flush``.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, final

import attrs
import trio

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Later"]


@final
@attrs.define(eq=False)
class Later:
    """The fake's deferred work, in the order it was set off."""

    _actions: deque[Callable[[], object]] = attrs.field(init=False, factory=deque)
    _work: trio.Event = attrs.field(init=False, factory=trio.Event)

    def defer(self, action: Callable[[], object]) -> None:
        """Queue *action*, and wake a task waiting in `wait`."""
        self._actions.append(action)
        self._work.set()

    def wake(self) -> None:
        """Wake a task waiting in `wait`, with nothing queued (the child ended)."""
        self._work.set()

    def run(self) -> None:
        """Run what is queued, in order, and what that queues in turn."""
        while self._actions:
            self._actions.popleft()()

    async def wait(self) -> None:
        """Wait until work is queued or `wake` is called; at once (with no
        checkpoint) if work is queued already."""
        self._work = trio.Event()
        if not self._actions:
            await self._work.wait()
