"""The portable backend's Windows hooks: Job Objects, process groups, CTRL_BREAK.

Windows has no signals and no process groups in the POSIX sense, so the
child's tree is a **Job Object** of its own, created with
``JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE``: every process the child starts is in
the job too, terminating the job ends all of them, and closing its last handle
(which the OS does when this process dies, even killed) ends whatever is left.
The child is started suspended and resumed only once it is in its job, so not
even its first grandchild escapes.

Each child also starts with ``CREATE_NEW_PROCESS_GROUP``, so that
``CTRL_BREAK_EVENT`` -- the one graceful stop a console program can be sent --
reaches it and its console descendants and not this process. The mapping,
as in Twisted's win32 transport and ``subprocess``:

* ``INT`` (2): ``CTRL_BREAK_EVENT`` to the child's process group;
* ``TERM`` (15), ``KILL`` (9): the job is terminated (exit code 1);
* the stop sequence: ``CTRL_BREAK_EVENT``, then the job is terminated after
  ``kill_after``.

Options Windows cannot honour are refused at ``spawn()``, naming the option.
Everything is reached through `ctypes`; this module is imported on Windows
only (`trioproc._os._backends`).
"""

from __future__ import annotations

import ctypes
import ntpath
import subprocess
import sys
from ctypes import wintypes
from typing import TYPE_CHECKING, Any, Final, final

import attrs

if TYPE_CHECKING:
    import trio

    from .._options import SpawnOptions

__all__ = [
    "HOOKS",
    "JobTree",
    "WindowsHooks",
    "enable_console_colours",
    "wait_reader_closed",
]

assert sys.platform == "win32"

SIGINT: Final = 2
SIGKILL: Final = 9
SIGTERM: Final = 15
#: The POSIX signal numbers a Windows child can be sent, by name.
SIGNALS: Final = {"SIGINT": SIGINT, "SIGKILL": SIGKILL, "SIGTERM": SIGTERM}
#: The exit code of a terminated job (as ``Popen.terminate`` and Twisted use).
TERMINATED_EXIT_CODE: Final = 1

_CREATE_SUSPENDED: Final = 0x4  # not in subprocess
_CTRL_BREAK_EVENT: Final = 1
_JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE: Final = 0x2000
_JOB_OBJECT_BASIC_ACCOUNTING_INFORMATION: Final = 1
_JOB_OBJECT_EXTENDED_LIMIT_INFORMATION: Final = 9
_ENABLE_VIRTUAL_TERMINAL_PROCESSING: Final = 0x4
# Probing an idle pipe for its closed reader (`wait_reader_closed`).
_PROBE_FIRST: Final = 0.005
_PROBE_MOST: Final = 0.5


class _IoCounters(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_ulonglong)
        for name in (
            "ReadOperationCount",
            "WriteOperationCount",
            "OtherOperationCount",
            "ReadTransferCount",
            "WriteTransferCount",
            "OtherTransferCount",
        )
    ]


class _BasicLimits(ctypes.Structure):
    _fields_ = [
        ("PerProcessUserTimeLimit", ctypes.c_int64),
        ("PerJobUserTimeLimit", ctypes.c_int64),
        ("LimitFlags", wintypes.DWORD),
        ("MinimumWorkingSetSize", ctypes.c_size_t),
        ("MaximumWorkingSetSize", ctypes.c_size_t),
        ("ActiveProcessLimit", wintypes.DWORD),
        ("Affinity", ctypes.c_size_t),
        ("PriorityClass", wintypes.DWORD),
        ("SchedulingClass", wintypes.DWORD),
    ]


class _ExtendedLimits(ctypes.Structure):
    _fields_ = [
        ("BasicLimitInformation", _BasicLimits),
        ("IoInfo", _IoCounters),
        ("ProcessMemoryLimit", ctypes.c_size_t),
        ("JobMemoryLimit", ctypes.c_size_t),
        ("PeakProcessMemoryUsed", ctypes.c_size_t),
        ("PeakJobMemoryUsed", ctypes.c_size_t),
    ]


class _BasicAccounting(ctypes.Structure):
    _fields_ = [
        ("TotalUserTime", ctypes.c_int64),
        ("TotalKernelTime", ctypes.c_int64),
        ("ThisPeriodTotalUserTime", ctypes.c_int64),
        ("ThisPeriodTotalKernelTime", ctypes.c_int64),
        ("TotalPageFaultCount", wintypes.DWORD),
        ("TotalProcesses", wintypes.DWORD),
        ("ActiveProcesses", wintypes.DWORD),
        ("TotalTerminatedProcesses", wintypes.DWORD),
    ]


def _bind() -> tuple[Any, Any]:
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    ntdll = ctypes.WinDLL("ntdll")
    for name, restype, argtypes in (
        ("CreateJobObjectW", wintypes.HANDLE, [wintypes.LPVOID, wintypes.LPCWSTR]),
        (
            "SetInformationJobObject",
            wintypes.BOOL,
            [wintypes.HANDLE, ctypes.c_int, wintypes.LPVOID, wintypes.DWORD],
        ),
        (
            "QueryInformationJobObject",
            wintypes.BOOL,
            [
                wintypes.HANDLE,
                ctypes.c_int,
                wintypes.LPVOID,
                wintypes.DWORD,
                wintypes.LPDWORD,
            ],
        ),
        (
            "AssignProcessToJobObject",
            wintypes.BOOL,
            [wintypes.HANDLE, wintypes.HANDLE],
        ),
        ("TerminateJobObject", wintypes.BOOL, [wintypes.HANDLE, wintypes.UINT]),
        ("CloseHandle", wintypes.BOOL, [wintypes.HANDLE]),
        (
            "GenerateConsoleCtrlEvent",
            wintypes.BOOL,
            [wintypes.DWORD, wintypes.DWORD],
        ),
        ("GetConsoleMode", wintypes.BOOL, [wintypes.HANDLE, wintypes.LPDWORD]),
        ("SetConsoleMode", wintypes.BOOL, [wintypes.HANDLE, wintypes.DWORD]),
    ):
        function = getattr(kernel32, name)
        function.restype, function.argtypes = restype, argtypes
    ntdll.NtResumeProcess.restype = ctypes.c_long
    ntdll.NtResumeProcess.argtypes = [wintypes.HANDLE]
    return kernel32, ntdll


_kernel32, _ntdll = _bind()


def enable_console_colours(fd: int) -> bool:
    """Let the console *fd* writes to interpret ANSI colour sequences
    (``ENABLE_VIRTUAL_TERMINAL_PROCESSING``, Windows 10 and later), and say
    whether it does: ``False`` for a console too old for it, or for an fd
    that is not a console."""
    import msvcrt

    try:
        handle = msvcrt.get_osfhandle(fd)
    except OSError:
        return False
    mode = wintypes.DWORD()
    if not _kernel32.GetConsoleMode(handle, ctypes.byref(mode)):
        return False
    if mode.value & _ENABLE_VIRTUAL_TERMINAL_PROCESSING:
        return True
    wanted = mode.value | _ENABLE_VIRTUAL_TERMINAL_PROCESSING
    return bool(_kernel32.SetConsoleMode(handle, wanted))


async def wait_reader_closed(stream: Any) -> None:
    """Return once the far end of the pipe *stream* (a Trio
    ``PipeSendStream``) is closed.

    A pipe's write end learns that only by writing; a write of no bytes
    tells without sending anything (Twisted's win32 transport polls the same
    way), from 5 ms apart, doubling to half a second. Only the stream's
    writer may call this, while it has nothing to send.
    """
    import trio

    delay = _PROBE_FIRST
    while True:
        await trio.sleep(delay)
        try:
            await trio.lowlevel.write_overlapped(stream._handle_holder.handle, b"")
        except BrokenPipeError:
            return
        delay = min(delay * 2, _PROBE_MOST)


def _check(ok: object) -> None:
    if not ok:
        raise ctypes.WinError(ctypes.get_last_error())


def _new_job() -> int:
    """A Job Object that ends its processes when its last handle closes."""
    job = _kernel32.CreateJobObjectW(None, None)
    _check(job)
    limits = _ExtendedLimits()
    limits.BasicLimitInformation.LimitFlags = _JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
    try:
        _check(
            _kernel32.SetInformationJobObject(
                job,
                _JOB_OBJECT_EXTENDED_LIMIT_INFORMATION,
                ctypes.byref(limits),
                ctypes.sizeof(limits),
            )
        )
    except OSError:
        _kernel32.CloseHandle(job)
        raise
    return int(job)


@final
@attrs.define(eq=False)
class JobTree:
    """A Windows child and its Job Object (see the module docstring).

    Attributes:
      process: the child.
      job: the job's handle, until `close`.
    """

    process: trio.Process
    job: int | None

    @property
    def sealed(self) -> bool:
        """No process can leave its job (no breakaway is allowed)."""
        return True

    def signal(self, signum: int, *, group: bool = False) -> None:
        """INT: ``CTRL_BREAK_EVENT`` to the child's process group; TERM and
        KILL: the job is terminated (with or without *group*: the tree is
        the job).

        Raises:
          ValueError: a signal Windows has no counterpart for.
        """
        if signum == SIGINT:
            self.terminate()
        elif signum in (SIGTERM, SIGKILL):
            self.kill()
        else:  # pragma: no cover - parse_signal refuses them on Windows
            raise ValueError(f"signal {signum} has no counterpart on Windows")

    def terminate(self) -> None:
        """``CTRL_BREAK_EVENT`` to the child's process group (its pid)."""
        # It fails only once the group is gone, which the stop sequence will see.
        _kernel32.GenerateConsoleCtrlEvent(_CTRL_BREAK_EVENT, self.process.pid)

    def kill(self) -> None:
        """Terminate every process of the job."""
        if self.job is not None:
            _kernel32.TerminateJobObject(self.job, TERMINATED_EXIT_CODE)

    def alive(self) -> bool:
        """Whether the job still has a live process."""
        if self.job is None:
            return False
        info = _BasicAccounting()
        ok = _kernel32.QueryInformationJobObject(
            self.job,
            _JOB_OBJECT_BASIC_ACCOUNTING_INFORMATION,
            ctypes.byref(info),
            ctypes.sizeof(info),
            None,
        )
        return bool(ok) and info.ActiveProcesses > 0

    def reaped(self) -> None:
        """Nothing: a job names its processes by handle, never by reused pid."""

    def close(self) -> None:
        """Close the job (ending anything left in it)."""
        job, self.job = self.job, None
        if job is not None:
            _kernel32.CloseHandle(job)


@final
class WindowsHooks:
    """The portable backend on Windows."""

    platform: Final = "Windows"

    def refuse(self, options: SpawnOptions) -> None:
        """Refuse what a Windows child cannot have, naming the option.

        Raises:
          ValueError: ``child_fds`` beyond 0, 1 and 2, ``uid``, ``gid``,
            ``new_session``.
        """
        extra = sorted(fd for fd in options.child_fds if fd > 2)
        if extra:
            raise ValueError(
                f"child_fds[{extra[0]}] is not supported on Windows: a child has "
                "only fds 0, 1 and 2 there (pass other handles by name instead)"
            )
        for name, value in (("uid", options.uid), ("gid", options.gid)):
            if value is not None:
                raise ValueError(
                    f"{name}= is not supported on Windows: it has no POSIX user "
                    "and group ids"
                )
        if options.new_session:
            raise ValueError(
                "new_session=True is not supported on Windows: it has no POSIX "
                "sessions (each child gets a process group and a Job Object of "
                "its own anyway)"
            )

    def popen_options(self, options: SpawnOptions) -> dict[str, Any]:
        """A process group of the child's own, started suspended until it is
        in its job."""
        return {
            "creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | _CREATE_SUSPENDED,
        }

    def command(self, argv: list[str]) -> str | list[str]:
        """*argv* joined by the C runtime's rules (`subprocess.list2cmdline`),
        except for ``cmd /s /c COMMAND``: ``cmd`` reads its command line by
        rules of its own, and with ``/s`` takes everything between the first
        and the last quote verbatim, so *COMMAND* goes there unescaped (as
        `subprocess` does for ``shell=True``) and keeps its own quotes."""
        if (
            len(argv) >= 3
            and argv[-2].lower() == "/c"
            and any(arg.lower() == "/s" for arg in argv[1:-2])
            and ntpath.basename(argv[0]).lower() in ("cmd", "cmd.exe")
        ):
            return f'{subprocess.list2cmdline(argv[:-1])} "{argv[-1]}"'
        return argv

    def adopt(self, process: trio.Process, options: SpawnOptions) -> JobTree:
        """Put the suspended child in a new job, then let it run.

        Raises:
          OSError: the job cannot be made or the child not put in it.
        """
        handle = int(process._proc._handle)  # type: ignore[attr-defined]
        job = _new_job()
        try:
            _check(_kernel32.AssignProcessToJobObject(job, handle))
            status = _ntdll.NtResumeProcess(handle)
            if status < 0:
                code = status & 0xFFFFFFFF
                raise OSError(f"NtResumeProcess failed: NTSTATUS {code:#x}")
        except BaseException:
            _kernel32.TerminateJobObject(job, TERMINATED_EXIT_CODE)
            _kernel32.CloseHandle(job)
            raise
        return JobTree(process, job)


#: The hooks `trioproc._os._backends` hands the portable backend on Windows.
HOOKS: Final = WindowsHooks()
