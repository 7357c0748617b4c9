"""The input queue's accounting (`trioproc._flow.InputQueue`), synchronously:
the rules the real writer and the fake's writer share, with no I/O."""

from __future__ import annotations

from trioproc._flow import InputQueue

from .test_flow import Stoppable as Producer


def test_push_producer_paused_above_high_resumed_below_low_once_per_crossing() -> None:
    """A streaming producer hears pause once when the queue passes the high
    mark, and resume once when it falls below the low mark."""
    queue, producer = InputQueue(100, 20), Producer()
    queue.register(producer, True)
    for _ in range(3):
        queue.accepted(b"x" * 60, 60, 60)
        assert not queue.wrote()
    assert producer.calls == ["pause"]
    assert queue.producer_paused
    assert not queue.drained(150)  # 30 left: still at or above low
    assert queue.drained(20)  # 10 left
    assert queue.drained(0)
    assert producer.calls == ["pause", "resume"]
    assert not queue.producer_paused


def test_push_producer_never_resumed_unless_paused() -> None:
    """Draining below the low mark resumes nobody that was not paused."""
    queue, producer = InputQueue(100, 20), Producer()
    queue.register(producer, True)
    queue.accepted(b"x" * 50, 50, 50)
    queue.wrote()
    assert queue.drained(50)
    assert producer.calls == []


def test_register_past_high_pauses_at_once() -> None:
    """A streaming producer registered on a full queue is paused at once."""
    queue, producer = InputQueue(10, 5), Producer()
    queue.accepted(b"x" * 11, 11, 11)
    queue.register(producer, True)
    assert producer.calls == ["pause"]
    assert queue.producer_paused


def test_pull_producer_gets_turn_once_queue_is_empty() -> None:
    """A pull producer is asked on registering, then once after each write
    when the queue has been written out -- never while bytes wait."""
    queue, producer = InputQueue(100, 20), Producer()
    queue.register(producer, False)
    assert producer.calls == ["resume"]
    assert queue.turn() is None  # it has not written yet
    queue.accepted(b"abc", 3, 3)
    assert queue.wrote()
    assert queue.turn() is None  # three bytes wait
    queue.drained(3)
    assert queue.turn() is producer
    assert queue.turn() is None  # one turn per write


def test_done_queue_stops_a_new_producer_and_gives_no_turn() -> None:
    """A queue that is done stops a producer registered on it."""
    queue, producer = InputQueue(10, 5), Producer()
    queue.closing = True
    queue.register(producer, False)
    assert producer.calls == ["stop"]
    assert queue.producer is None
    assert queue.turn() is None


def test_unregister_forgets_the_producer_and_its_state() -> None:
    """Unregistering returns the producer and clears paused and owed turns."""
    queue, producer = InputQueue(10, 5), Producer()
    queue.register(producer, True)
    queue.accepted(b"x" * 20, 20, 20)
    queue.wrote()
    assert queue.unregister() is producer
    assert queue.producer is None
    assert not queue.producer_paused
    assert queue.unregister() is None


def test_room_full_and_done() -> None:
    """Room is what fits below the high mark; full means a sender waits."""
    queue = InputQueue(10, 5)
    assert queue.room == 10
    assert not queue.full
    queue.accepted(b"x" * 12, 12, 12)
    assert queue.room == 0
    assert queue.full
    queue.drop(broken=True, closing=False)
    assert queue.buffered == 0
    assert queue.broken
    assert not queue.closing
    assert queue.done
    assert not queue.full


def test_terminal_eof_one_after_complete_line_two_after_partial() -> None:
    """A terminal's end of input is one EOF after a complete line, two after
    a partial one (canonical mode hands a partial line over on the first)."""
    queue = InputQueue(10, 5, b"\x04")
    assert queue.end_of_input() == b"\x04"
    queue.accepted(b"abc", 3, 0)
    assert queue.end_of_input() == b"\x04\x04"
    queue.accepted(memoryview(b"d\nxyz"), 2, 0)  # only "d\n" was taken
    assert queue.end_of_input() == b"\x04"
    queue.accepted(b"", 0, 0)
    assert queue.end_of_input() == b"\x04"


def test_pipe_closes_with_nothing() -> None:
    """A pipe's end of input writes nothing: closing it is the end."""
    queue = InputQueue(10, 5)
    queue.accepted(b"partial", 7, 0)
    assert queue.end_of_input() == b""
