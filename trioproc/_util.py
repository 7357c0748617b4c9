"""Small mechanisms the rest of the package shares.

`NoPublicConstructor` is the one way an object the library hands out (a
transport, a stream, a pipeline) refuses to be built by its users, as trio's
metaclass of that name does: ``Cls(...)`` raises `TypeError`, and the library
builds one with ``Cls._create(...)``, which runs the ordinary ``__init__``.
`fail` is how a stream refuses a call, so that a cancelled task sees its
cancellation first. `ends_in_order` and `exit_nursery` are the one way every
block that enters a nursery by hand (``spawn()``, a pipeline, the fake spawn,
the supervisor) decides how it ends and which exception leaves it;
`raise_in_task` hands such a nursery an error met outside its tasks.
`PASS_EVERY` and `PASS_CALL_MIN` share out the schedule points of stream
calls that complete without waiting.
"""

from __future__ import annotations

import math
import sys
from abc import ABCMeta
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Final, NoReturn, TypeVar

import trio

if sys.version_info < (3, 11):  # pragma: no cover - trio requires it there
    # The stub is installed only where Python 3.10 runs.
    from exceptiongroup import (  # type: ignore[import-not-found,unused-ignore]
        BaseExceptionGroup,
    )

__all__ = [
    "PASS_CALL_MIN",
    "PASS_EVERY",
    "NoPublicConstructor",
    "ends_in_order",
    "exit_nursery",
    "exit_scope",
    "fail",
    "one_error",
    "raise_in_task",
]

_T = TypeVar("_T")

#: A stream call (``receive_some``, ``send_all``) that completes without
#: waiting is always a cancel point, and a schedule point once this much has
#: been counted since its stream's last one: each such call counts its bytes,
#: and at least `PASS_CALL_MIN`. So at most 16 calls, or about 1 MiB, go by
#: between two schedule points -- a task reading a busy child still lets
#: others run every few hundred microseconds -- and a round trip through a
#: child pays one trip through the scheduler (its wait), not three. A pass
#: costs as much as a small call; trio weighs the same trade for its own
#: checkpoints (python-trio/trio#1757), and the pumps and ``lines()`` make
#: it already.
PASS_EVERY: Final = 1 << 20
PASS_CALL_MIN: Final = 1 << 16


class NoPublicConstructor(ABCMeta):
    """The metaclass of a class with no public constructor.

    It derives from `ABCMeta` so that it serves subclasses of trio's abstract
    streams too. The class may name what makes one in a ``_made_by`` class
    attribute (``"spawn()"``), for the error message.
    """

    def __call__(cls, *args: object, **kwargs: object) -> NoReturn:
        made_by = getattr(cls, "_made_by", "spawn()")
        raise TypeError(f"{cls.__name__} has no public constructor: use {made_by}")

    def _create(cls: type[_T], *args: Any, **kwargs: Any) -> _T:
        """Build an instance: the library's own way in (``__init__`` runs)."""
        return super().__call__(*args, **kwargs)  # type: ignore[misc,no-any-return]  # cls is an instance of this metaclass


async def fail(error: Exception) -> NoReturn:
    """Raise *error*, unless the caller is cancelled: a block torn down by a
    cancellation closes its own streams, and a task of that block must see
    its cancellation (trio's rule: a cancelled call raises Cancelled), not a
    closed stream."""
    await trio.lowlevel.checkpoint_if_cancelled()
    raise error


async def raise_in_task(exc: BaseException) -> NoReturn:
    """A task that fails with *exc*: how an error met outside a block's tasks
    (by the exit watcher, or by the block's own end) leaves through its
    nursery, under the same policy as the tasks' errors."""
    raise exc


def ends_in_order(
    exc: BaseException | None, nursery: trio.Nursery | trio.CancelScope | None
) -> bool:
    """Whether a block whose tasks run in *nursery* (or whose body runs in
    the scope *nursery*, or that has neither), left with *exc*, lets them end
    in order (write out input, read to end of file) rather than stopping
    them.

    In order means the body ended without an error and is not cancelled.
    Otherwise an error cancels *nursery* here; a cancellation (a
    `trio.Cancelled` from the body, or a body that left a cancelled scope
    without a checkpoint) comes from a scope around the block, which already
    cancels the tasks.
    """
    if exc is None and trio.current_effective_deadline() != -math.inf:
        return True
    if exc is not None and not isinstance(exc, trio.Cancelled):
        if isinstance(nursery, trio.Nursery):
            nursery.cancel_scope.cancel()
        elif nursery is not None:
            nursery.cancel()
    return False


async def exit_nursery(
    manager: Any,
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
) -> bool:
    """Leave *manager* (a ``trio.open_nursery()`` entered by hand) as a block
    ends by *exc*, with every trioproc block's exception policy: a single
    error leaves as itself, cancellations as one, several errors as a group.

    A block that ends well and was cancelled from outside while its tasks
    finished (a trio nursery's exit is no cancel point, and tasks that
    deliver the last output do not raise) leaves with that cancellation: a
    cancellation stays one."""
    try:
        suppressed = bool(await manager.__aexit__(exc_type, exc, tb))
    except BaseExceptionGroup as group:
        single = one_error(group)
        if single is None:
            _, errors = group.split(trio.Cancelled)
            if errors is None or errors is group:
                raise  # (nested groups of cancellations only, or no Cancelled)
            raise errors from None  # (the group of the errors, as it was)
        if single is exc:
            return False
        _reraise(single)
    if exc is None:
        await trio.lowlevel.checkpoint_if_cancelled()
    return suppressed


async def exit_scope(
    scope: trio.CancelScope | None,
    exc: BaseException | None,
    errors: Sequence[BaseException],
    *,
    waited: bool,
) -> bool:
    """Leave *scope* (a cancel scope entered by hand around a block's body,
    for a block with no task of its own; ``None``: none was needed) as the
    block ends by *exc*, with *errors* met outside the body (by the child's
    watcher, or by the block's end), under `exit_nursery`'s policy: a single
    error leaves as itself, cancellations as one, several errors as a
    group. A block that ends well takes a checkpoint here, or, if it
    *waited* at its end already, a cancel point."""
    swallowed = scope is not None and scope.__exit__(
        type(exc) if exc else None, exc, None
    )
    leaving = None if swallowed else exc
    real = [e for e in (leaving, *errors) if e is not None]
    single = one_error(BaseExceptionGroup("errors", real)) if real else None
    if not real or single is leaving:
        if leaving is None:
            if waited:
                # What followed the wait (ending what the child left in its
                # group) was shielded: a cancellation then is delivered here.
                await trio.lowlevel.checkpoint_if_cancelled()
            else:
                await trio.lowlevel.checkpoint()
        return leaving is None
    if single is None:
        errors = [e for e in real if not isinstance(e, trio.Cancelled)]
        raise BaseExceptionGroup("Exceptions from a trioproc block", errors)
    return _reraise(single)


def one_error(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The error *group* stands for, if it holds one; ``None`` if several.

    Cancellations alone stand for one cancellation: they all come from the
    same scope around the block. Beside a real error they are dropped.
    """
    leaves: Sequence[BaseException] = group.exceptions
    errors = [e for e in leaves if not isinstance(e, trio.Cancelled)]
    if not errors:
        return leaves[0]
    if len(errors) == 1:
        return errors[0]
    return None


def _reraise(exc: BaseException) -> NoReturn:
    # Raise *exc* as it was: without the group as its context.
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        del exc, context
