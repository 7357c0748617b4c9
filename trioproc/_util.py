"""Small mechanisms the rest of the package shares.

`NoPublicConstructor` is the one way an object the library hands out (a
transport, a stream, a pipeline) refuses to be built by its users, as trio's
metaclass of that name does: ``Cls(...)`` raises `TypeError`, and the library
builds one with ``Cls._create(...)``, which runs the ordinary ``__init__``.
`fail` is how a stream refuses a call, so that a cancelled task sees its
cancellation first.
"""

from __future__ import annotations

from abc import ABCMeta
from typing import Any, NoReturn, TypeVar

import trio

__all__ = ["NoPublicConstructor", "fail"]

_T = TypeVar("_T")


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
