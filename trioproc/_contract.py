"""What every provider of the process contract shares: argument checks and
error messages, so that the real transport and the fake in `trioproc.testing`
accept and refuse exactly the same things."""

from __future__ import annotations

import signal
from collections.abc import Iterable
from typing import final

import attrs

__all__ = [
    "ProcessAddress",
    "as_bytes",
    "join_sequence",
    "not_a_child_fd",
    "not_a_write_fd",
    "parse_signal",
    "producer_registered",
]


@final
@attrs.frozen
class ProcessAddress:
    """The address of a process transport: it has none beyond being a process."""


def parse_signal(signal_id: object) -> int:
    """The signal number *signal_id* names: ``"TERM"``, ``"SIGTERM"``, 15 ...

    Raises:
      ValueError: no such signal.
      TypeError: neither a name nor a number.
    """
    if isinstance(signal_id, str):
        name = signal_id.upper()
        if not name.startswith("SIG"):
            name = "SIG" + name
        try:
            return int(signal.Signals[name])
        except KeyError:
            raise ValueError(f"unknown signal name {signal_id!r}") from None
    if isinstance(signal_id, int) and not isinstance(signal_id, bool):
        if signal_id in signal.valid_signals():
            return int(signal_id)
        raise ValueError(f"{signal_id} is not a valid signal number")
    raise TypeError(f"a signal is a name or a number, not {signal_id!r}")


def as_bytes(data: object) -> bytes:
    """*data* as bytes for ``write``; a mutable buffer is copied, since the
    caller may reuse it once the call returns.

    Raises:
      TypeError: *data* is not bytes-like (a str, say).
    """
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"data must be bytes, not {type(data).__name__}")


def join_sequence(seq: object) -> bytes:
    """The bytes ``writeSequence(seq)`` writes, checked item by item.

    Raises:
      TypeError: *seq* is a single bytes or str, or holds a non-bytes item.
    """
    if isinstance(seq, (bytes, bytearray, memoryview, str)):
        raise TypeError(
            f"writeSequence takes an iterable of bytes, not {type(seq).__name__}"
        )
    if not isinstance(seq, Iterable):
        raise TypeError(f"writeSequence takes an iterable of bytes, not {seq!r}")
    return b"".join([as_bytes(item) for item in seq])


def not_a_write_fd(fd: object, writable: Iterable[int]) -> KeyError:
    """The error for writing to an fd the parent does not write to."""
    those = sorted(writable)
    return KeyError(
        f"child fd {fd!r} is not one the parent writes to (those are {those})"
    )


def not_a_child_fd(fd: object, known: Iterable[int]) -> KeyError:
    """The error for naming an fd the child does not have."""
    return KeyError(f"child fd {fd!r} is not one of this child's {sorted(known)}")


def producer_registered(producer: object) -> RuntimeError:
    """The error for registering a second producer."""
    return RuntimeError(
        f"a producer is registered already ({producer!r}); unregisterProducer() first"
    )
