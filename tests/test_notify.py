"""Readiness and health the systemd way: `ready_on_notify`, ``watchdog=``."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import sys

import pytest
import trio

import trioproc
from trioproc import _notify

from .helpers import python

#: Sends its notify socket's path, env and pid on stdout, then *messages*.
SEND = """\
import os, socket, sys, time
print("env", os.environ["NOTIFY_SOCKET"], os.environ.get("WATCHDOG_USEC"),
      os.environ.get("WATCHDOG_PID"), os.getpid(), flush=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for message in sys.argv[1:]:
    if message.startswith("sleep "):
        time.sleep(float(message[6:]))
    else:
        s.sendto(message.encode(), os.environ["NOTIFY_SOCKET"])
time.sleep(60)
"""


def sender(*messages: str) -> list[str]:
    return [*python(SEND), *messages]


def quiet(name: str, fd: int, line: bytes) -> None:
    """An output sink that prints nothing (ready checks still see lines)."""


class Events:
    """A supervisor's on_event sink that can be waited on."""

    def __init__(self) -> None:
        self.seen: list[trioproc.SupervisorEvent] = []
        self._news = trio.Event()

    def __call__(self, event: trioproc.SupervisorEvent) -> None:
        self.seen.append(event)
        self._news.set()
        self._news = trio.Event()

    async def wait_for(self, kind: str, name: str, count: int = 1) -> None:
        """Return once *count* events of *kind* about *name* were seen."""
        while sum(e.kind == kind and e.name == name for e in self.seen) < count:
            await self._news.wait()


async def test_ready_on_notify_waits_for_ready_1_and_keeps_status() -> None:
    """start() returns once the child sends READY=1, not before; STATUS=
    text is kept; the socket is private and gone after the child ends."""
    async with trioproc.Supervisor(on_output=quiet) as sup:
        with trio.move_on_after(1) as early:
            await sup.start(
                trioproc.ChildSpec(
                    "never",
                    argv=sender("STATUS=starting up"),
                    ready=trioproc.ready_on_notify(),
                )
            )
        assert early.cancelled_caught  # no READY=1: not ready
        child = await sup.start(
            trioproc.ChildSpec(
                "web",
                argv=sender("STATUS=warming", "READY=1\nSTATUS=serving 3 clients"),
                ready=trioproc.ready_on_notify(),
            )
        )
        assert child.ready
        line = await child.wait_for_output(b"^env ")
        path = line.split()[1].decode()
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        # One datagram: its STATUS= is read with its READY=1.
        assert child.status == "serving 3 clients"
        await sup.stop("web")
        assert not await trio.Path(path).parent.exists()


async def test_a_notification_from_another_process_is_ignored() -> None:
    """One child cannot mark another ready: only the child and its process
    group count (the kernel's SCM_CREDENTIALS pid, not the message)."""
    events = Events()
    ready = trio.Event()
    async with (
        trioproc.Supervisor(on_output=quiet, on_event=events) as sup,
        trio.open_nursery() as nursery,
    ):

        async def start() -> None:
            spec = trioproc.ChildSpec(
                "victim", argv=sender(), ready=trioproc.ready_on_notify()
            )
            await sup.start(spec)
            ready.set()

        nursery.start_soon(start)
        await events.wait_for("started", "victim")
        line = await sup.child("victim").wait_for_output(b"^env ")
        path = line.split()[1].decode()
        # Another process (this one, then a stranger child) says READY=1.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"READY=1", path)
        await trioproc.run(
            python(
                f"import socket; socket.socket(socket.AF_UNIX, "
                f"socket.SOCK_DGRAM).sendto(b'READY=1', {path!r})"
            )
        )
        with trio.move_on_after(1):
            await ready.wait()
        assert not ready.is_set(), "a stranger marked the child ready"
        nursery.cancel_scope.cancel()


#: Sends READY=1 with a pipe's write end (sd_notify_barrier's way) and waits
#: until the manager closes it: it is alive while its message is read.
HELPER = """\
import os, socket
r, w = os.pipe()
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, w.to_bytes(4, "little"))]
s.sendmsg([b"READY=1"], rights, 0, os.environ["NOTIFY_SOCKET"])
os.close(w)
os.read(r, 1)
"""


async def test_a_helper_in_the_childs_process_group_may_notify() -> None:
    """A shell script's helper (a grandchild in the child's process group)
    reports for it, as systemd-notify run from a script does."""
    script = " ".join(f"'{a}'" for a in python(HELPER)) + " && exec sleep 60"
    async with trioproc.Supervisor(on_output=quiet) as sup:
        child = await sup.start(
            trioproc.ChildSpec(
                "script",
                argv=["/bin/sh", "-c", script],
                ready=trioproc.ready_on_notify(),
            )
        )
        assert child.ready


@pytest.mark.skipif(
    shutil.which("systemd-notify") is None, reason="systemd-notify is not installed"
)
async def test_systemd_notify_ready_from_a_script() -> None:
    """`systemd-notify --ready --status=...` in the child's script works
    outside systemd: it sends READY=1 for its parent (the script), then
    BARRIER=1 with a pipe and waits for the manager to close it."""
    script = (
        "systemd-notify --ready --status='up and running' && echo answered; "
        "exec sleep 60"
    )
    async with trioproc.Supervisor(on_output=quiet) as sup:
        child = await sup.start(
            trioproc.ChildSpec(
                "sh", argv=["/bin/sh", "-c", script], ready=trioproc.ready_on_notify()
            )
        )
        assert child.status == "up and running"
        # systemd-notify returned 0: its barrier was answered.
        await child.wait_for_output(b"^answered$")


@pytest.mark.deadline(40)
async def test_a_child_that_stops_sending_watchdog_is_restarted() -> None:
    """watchdog=: WATCHDOG_USEC and WATCHDOG_PID (its own pid) are set; a
    child that keeps sending WATCHDOG=1 stays; one that stops is stopped
    and restarted, and that counts as a failure (transient restarts)."""
    events = Events()
    keeps = sender("READY=1", *["WATCHDOG=1", "sleep 0.1"] * 20)
    stops = sender("READY=1", "WATCHDOG=1")
    async with trioproc.Supervisor(
        max_restarts=10, on_output=quiet, on_event=events
    ) as sup:
        good = await sup.start(
            trioproc.ChildSpec(
                "good", argv=keeps, ready=trioproc.ready_on_notify(), watchdog=0.6
            )
        )
        bad = await sup.start(
            trioproc.ChildSpec(
                "bad",
                argv=stops,
                restart="transient",  # restarted only after a failure
                ready=trioproc.ready_on_notify(),
                watchdog=0.6,
                kill_after=1,
            )
        )
        line = (await bad.wait_for_output(b"^env ")).split()
        assert line[2] == b"600000"
        assert line[3] == line[4] == str(bad.pid).encode()
        first = bad.pid
        await events.wait_for("ready", "bad", 2)
        assert bad.pid != first
        assert good.restarts == 0
        assert good.running
    exits = [e for e in events.seen if e.kind == "exited" and e.name == "bad"]
    assert exits
    assert "WATCHDOG=1" in (exits[0].error or "")
    assert "watchdog" in exits[0].message


async def test_watchdog_trigger_restarts_at_once() -> None:
    """WATCHDOG=trigger fails the child at once, as systemd's does."""
    events = Events()
    async with trioproc.Supervisor(on_output=quiet, on_event=events) as sup:
        await sup.start(
            trioproc.ChildSpec(
                "t",
                argv=sender("READY=1", "sleep 0.2", "WATCHDOG=trigger"),
                ready=trioproc.ready_on_notify(),
                watchdog=30,
            )
        )
        with trio.fail_after(10):
            await events.wait_for("restarting", "t")


def test_notify_specs_are_checked() -> None:
    """Bad watchdog values and task children with notify fail at once."""
    with pytest.raises(ValueError, match="watchdog"):
        trioproc.ChildSpec("a", argv=["true"], watchdog=0)
    with pytest.raises(TypeError):
        trioproc.ChildSpec("a", argv=["true"], watchdog="1")  # type: ignore[arg-type]

    async def task() -> None:
        pass

    with pytest.raises(TypeError, match="process child"):
        trioproc.ChildSpec("a", task=task, ready=trioproc.ready_on_notify())
    assert repr(trioproc.ready_on_notify()) == "ready_on_notify()"


async def test_a_missing_program_with_a_watchdog_still_raises() -> None:
    """The WATCHDOG_PID step does not hide a missing program."""
    async with trioproc.Supervisor(on_output=quiet) as sup:
        with pytest.raises(FileNotFoundError):
            await sup.start(
                trioproc.ChildSpec("x", argv=["no-such-program-xyz"], watchdog=1)
            )


def test_parse_skips_what_it_cannot_read() -> None:
    assert _notify.parse(b"READY=1\nSTATUS=a=b\njunk\n=x\n\xff=1\nREADY=0") == {
        "READY": "0",
        "STATUS": "a=b",
    }


async def test_notify_reaches_a_path_and_an_abstract_socket() -> None:
    """notify() handles both NOTIFY_SOCKET forms: a path and '@name'."""
    name = f"@trioproc-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as abstract:
        abstract.bind(b"\0" + name[1:].encode())
        assert _notify.notify(name, "READY=1")
        assert abstract.recv(100) == b"READY=1"
    receiver = _notify.NotifySocket()
    try:
        assert _notify.notify(receiver.path, "STATUS=x")
        message = await receiver.receive()
        assert message.fields == {"STATUS": "x"}
        assert message.pid == os.getpid()
        assert _notify.notify(receiver.path, "A" * 5000)  # too long: dropped
        assert _notify.notify(receiver.path, "WATCHDOG=1")
        assert (await receiver.receive()).fields == {"WATCHDOG": "1"}
    finally:
        receiver.close()
    assert not _notify.notify(receiver.path, "READY=1")  # gone: not raised
    assert not _notify.notify("relative", "READY=1")


def test_service_notifier_takes_its_variables_out_of_the_environment() -> None:
    env = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "2000000", "PATH": "/bin"}
    notifier = _notify.ServiceNotifier.from_environment(env)
    assert env == {"PATH": "/bin"}
    assert (notifier.socket, notifier.watchdog) == ("@x", 2.0)
    other = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "5", "WATCHDOG_PID": "1"}
    assert _notify.ServiceNotifier.from_environment(other).watchdog is None
    assert _notify.ServiceNotifier.from_environment({}).socket is None


del sys
