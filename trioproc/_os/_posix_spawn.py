"""libc's ``posix_spawn``, called through ctypes.

`os.posix_spawn` cannot change directory or close inherited fds in the child.
glibc (2.29+ for ``addchdir_np``, 2.34+ for ``addclosefrom_np``) and musl can,
and their ``posix_spawn`` runs no Python between fork and exec: it is a
``vfork``-style clone that runs only the file actions and ``execve``. That is
what makes it safe in a threaded parent and about as fast as starting a process
gets. ctypes releases the GIL for the call.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from _ctypes import CFuncPtr
from collections.abc import Sequence
from typing import Final, final

__all__ = [
    "HAS_ADDCHDIR",
    "HAS_ADDCLOSEFROM",
    "HAS_SPAWN_CGROUP",
    "FileActions",
    "posix_spawn",
]

if sys.platform != "linux":  # pragma: no cover - the flag values below are Linux's
    raise ImportError("trioproc starts children with Linux's posix_spawn flags")

# Flag values shared by glibc and musl on Linux.
_SETPGROUP: Final = 0x02
_SETSIGDEF: Final = 0x04
_SETSIGMASK: Final = 0x08
_SETSID: Final = 0x80
_SETCGROUP: Final = 0x100  # glibc 2.39+: CLONE_INTO_CGROUP

_libc = ctypes.CDLL(None, use_errno=True)


class _Opaque(ctypes.Structure):
    # The C types are opaque; these buffers are larger than glibc's (80 and
    # 336 bytes) and musl's, which is all the C side needs from us.
    _fields_ = [("_opaque", ctypes.c_byte * 1024)]


_Ptr = ctypes.POINTER(_Opaque)
_int = ctypes.c_int
_char_p = ctypes.c_char_p


def _bind(name: str, *argtypes: type) -> CFuncPtr | None:
    func: CFuncPtr | None = getattr(_libc, name, None)
    if func is not None:
        func.restype = _int
        func.argtypes = argtypes
    return func


_actions_init = _bind("posix_spawn_file_actions_init", _Ptr)
_actions_destroy = _bind("posix_spawn_file_actions_destroy", _Ptr)
_add_dup2 = _bind("posix_spawn_file_actions_adddup2", _Ptr, _int, _int)
_add_close = _bind("posix_spawn_file_actions_addclose", _Ptr, _int)
_add_open = _bind(
    "posix_spawn_file_actions_addopen", _Ptr, _int, _char_p, _int, ctypes.c_uint
)
_add_chdir = _bind("posix_spawn_file_actions_addchdir_np", _Ptr, _char_p)
_add_closefrom = _bind("posix_spawn_file_actions_addclosefrom_np", _Ptr, _int)
_attr_init = _bind("posix_spawnattr_init", _Ptr)
_attr_setflags = _bind("posix_spawnattr_setflags", _Ptr, ctypes.c_short)
_attr_setpgroup = _bind("posix_spawnattr_setpgroup", _Ptr, _int)
_attr_setsigdefault = _bind("posix_spawnattr_setsigdefault", _Ptr, _Ptr)
_attr_setsigmask = _bind("posix_spawnattr_setsigmask", _Ptr, _Ptr)
_attr_setcgroup = _bind("posix_spawnattr_setcgroup_np", _Ptr, _int)
_attr_destroy = _bind("posix_spawnattr_destroy", _Ptr)
_sigemptyset = _bind("sigemptyset", _Ptr)
_spawn = _bind(
    "posix_spawn",
    ctypes.POINTER(_int),
    _char_p,
    _Ptr,
    _Ptr,
    ctypes.c_void_p,
    ctypes.c_void_p,
)

#: Whether libc can change the child's directory (else: the trampoline does).
HAS_ADDCHDIR: Final = _add_chdir is not None
#: Whether libc can close every fd from a number up (else: fds are listed).
HAS_ADDCLOSEFROM: Final = _add_closefrom is not None
#: Whether libc can start the child in a given cgroup (glibc 2.39+); else
#: `trioproc._os._cgroup` moves the parent into the cgroup around the call.
HAS_SPAWN_CGROUP: Final = _attr_setcgroup is not None

# The current C environment, which os.environ keeps in step with putenv().
_environ = ctypes.c_void_p.in_dll(_libc, "environ")

_attrs: dict[tuple[bool, bool], _Opaque] = {}


def _check(result: int, what: str) -> None:
    if result != 0:
        raise OSError(result, f"{what}: {os.strerror(result)}")


def _spawn_attributes(
    setsid: bool, setpgroup: bool, cgroup_fd: int | None = None
) -> _Opaque:
    """Attributes shared by every spawn: default signal dispositions, empty
    mask, and a new session or process group if asked for.

    libc only reads them, so one object per kind serves every call; one
    with a *cgroup_fd* is made for its call (`posix_spawn` destroys it).
    """
    attr = _attrs.get((setsid, setpgroup)) if cgroup_fd is None else None
    if attr is None:
        assert _attr_init
        assert _attr_setflags
        assert _attr_setpgroup
        assert _attr_setsigdefault
        assert _attr_setsigmask
        assert _sigemptyset
        attr = _Opaque()
        every, none = _Opaque(), _Opaque()
        _check(_attr_init(attr), "posix_spawnattr_init")
        _sigemptyset(none)
        # Not sigfillset(): glibc leaves out its two internal signals (32 and
        # 33), and posix_spawn then sets them to SIG_IGN in the child, which
        # exec keeps. Setting the bits by hand (signals 1-64, the first 64
        # bits of a Linux sigset_t) resets them to default as well.
        ctypes.memset(ctypes.addressof(every), 0xFF, 8)
        _check(_attr_setsigdefault(attr, every), "posix_spawnattr_setsigdefault")
        _check(_attr_setsigmask(attr, none), "posix_spawnattr_setsigmask")
        flags = _SETSIGDEF | _SETSIGMASK
        if setsid:
            flags |= _SETSID
        elif setpgroup:
            # Group 0: the child's own pid, a new group it leads.
            _check(_attr_setpgroup(attr, 0), "posix_spawnattr_setpgroup")
            flags |= _SETPGROUP
        if cgroup_fd is not None:  # pragma: no cover - glibc 2.39+
            assert _attr_setcgroup is not None
            flags |= _SETCGROUP
            _check(_attr_setcgroup(attr, cgroup_fd), "posix_spawnattr_setcgroup_np")
        _check(_attr_setflags(attr, flags), "posix_spawnattr_setflags")
        if cgroup_fd is None:
            _attrs[setsid, setpgroup] = attr
    return attr


#: The kinds of step a `FileActions` plan holds (the first item of each step).
_DUP2: Final = 0
_CLOSE: Final = 1
_OPEN: Final = 2
_CHDIR: Final = 3
_CLOSEFROM: Final = 4

#: A plan: its steps, each a kind and that kind's arguments.
_Plan = tuple[tuple[object, ...], ...]

#: libc's object for each plan made so far. libc only reads it, so one serves
#: every later spawn with the same plan, from any thread; and as the same few
#: fd numbers come back spawn after spawn, most plans repeat. Never freed (a
#: thread may be spawning with it), so the cache is bounded.
_made: dict[_Plan, _Opaque] = {}
#: Plans beyond this many are made for their spawn and freed after it. A
#: loop that spawns one child at a time meets a handful of plans; a fleet
#: meets one per child (its pipes' numbers differ), which only a small bound
#: keeps from holding memory that no spawn reuses.
_MADE_LIMIT: Final = 32


@final
class FileActions:
    """The plan of fd operations the child runs between fork and exec, in order.

    The steps are recorded, then `make` turns them into libc's object (or
    finds the one made for the same plan before). Its owner calls `free`
    once the plan is no longer needed.
    """

    __slots__ = ("_actions", "_owned", "_steps")

    def __init__(self) -> None:
        self._steps: list[tuple[object, ...]] = []
        #: libc's object, once `make` has run.
        self._actions: _Opaque | None = None
        #: Whether `_actions` is this plan's own (not in the cache).
        self._owned = False

    def make(self) -> None:
        """Make libc's object for the recorded steps (call once, after the last).

        Raises:
          OSError: libc refused a step (an fd out of range: EBADF), naming it;
            or ENOMEM.
        """
        plan = tuple(self._steps)
        actions = _made.get(plan)
        if actions is None:
            actions = _build(plan)
            if len(_made) < _MADE_LIMIT:
                kept = _made.setdefault(plan, actions)
                if kept is not actions:  # another thread made it meanwhile
                    _free(actions)
                    actions = kept
            else:
                self._owned = True
        self._actions = actions

    def free(self) -> None:
        """Free the C object if it is this plan's own (call once, when the
        plan has been used or dropped)."""
        if self._owned:
            assert self._actions is not None
            _free(self._actions)
            self._owned = False
        self._actions = None

    def dup2(self, fd: int, new_fd: int) -> None:
        """Copy *fd* to *new_fd* in the child (the copy does not close on exec)."""
        self._steps.append((_DUP2, fd, new_fd))

    def close(self, fd: int) -> None:
        """Close *fd* in the child if it is open."""
        self._steps.append((_CLOSE, fd))

    def open(self, fd: int, path: bytes, flags: int) -> None:
        """Open *path* in the child as *fd*."""
        self._steps.append((_OPEN, fd, path, flags))

    def chdir(self, path: bytes) -> None:
        """Change the child's directory (only where `HAS_ADDCHDIR`)."""
        assert _add_chdir is not None
        self._steps.append((_CHDIR, path))

    def closefrom(self, low_fd: int) -> None:
        """Close every fd from *low_fd* up in the child.

        Without libc's ``addclosefrom_np`` this lists the parent's inheritable
        fds now and closes those; an fd another thread makes inheritable at
        this very moment could slip through, which is why libc's way is used
        wherever it exists.
        """
        if _add_closefrom is not None and HAS_ADDCLOSEFROM:
            self._steps.append((_CLOSEFROM, low_fd))
            return
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd >= low_fd:
                try:
                    inheritable = os.get_inheritable(fd)
                except OSError:  # the listing's own fd, closed by now
                    continue
                if inheritable:
                    self.close(fd)


def _build(plan: _Plan) -> _Opaque:
    """libc's object for *plan*.

    Raises:
      OSError: libc refused a step, naming it; nothing is left allocated.
    """
    assert _actions_init is not None
    assert _add_dup2 is not None
    assert _add_close is not None
    assert _add_open is not None
    actions = _Opaque()
    _check(_actions_init(actions), "posix_spawn_file_actions_init")
    try:
        for step in plan:
            kind = step[0]
            # libc copies the paths it is given: the plan need not outlive this.
            if kind == _DUP2:
                _, fd, new_fd = step
                _check(_add_dup2(actions, fd, new_fd), f"dup2({fd}, {new_fd})")
            elif kind == _CLOSE:
                _, fd = step
                _check(_add_close(actions, fd), f"close({fd})")
            elif kind == _OPEN:
                _, fd, path, flags = step
                _check(_add_open(actions, fd, path, flags, 0), f"open({path!r})")
            elif kind == _CHDIR:
                assert _add_chdir is not None
                _, path = step
                _check(_add_chdir(actions, path), f"chdir({path!r})")
            else:
                assert _add_closefrom is not None
                _, low_fd = step
                _check(_add_closefrom(actions, low_fd), f"closefrom({low_fd})")
    except BaseException:
        _free(actions)
        raise
    return actions


def _free(actions: _Opaque) -> None:
    assert _actions_destroy is not None
    _actions_destroy(actions)


def posix_spawn(
    path: bytes,
    argv: Sequence[bytes],
    env: Sequence[bytes] | None,
    actions: FileActions,
    *,
    setsid: bool,
    setpgroup: bool = False,
    cgroup_fd: int | None = None,
) -> int:
    """Start *path* with *argv* and *env* (``None``: the parent's); return its pid.

    Every signal disposition is reset to default and the signal mask is empty
    in the child; with *setsid* the child leads a new session, else with
    *setpgroup* a new process group; with *cgroup_fd* (a cgroup-v2
    directory, only where `HAS_SPAWN_CGROUP`) it is born in that cgroup.

    Raises:
      OSError: the child could not be started (libc reports exec's own errno,
        and reaps the failed child itself).
    """
    assert _spawn is not None
    assert actions._actions is not None, "FileActions.make() was not called"
    c_argv = (_char_p * (len(argv) + 1))(*argv, None)
    if env is None:
        c_env: object = _environ
    else:
        c_env = (_char_p * (len(env) + 1))(*env, None)
    pid = _int()
    attr = _spawn_attributes(setsid, setpgroup, cgroup_fd)
    try:
        result = _spawn(ctypes.byref(pid), path, actions._actions, attr, c_argv, c_env)
    finally:
        if cgroup_fd is not None:  # pragma: no cover - glibc 2.39+
            assert _attr_destroy is not None
            _attr_destroy(attr)
    if result != 0:
        raise OSError(result, os.strerror(result))
    return pid.value


def _probe() -> None:
    # Refuse to import where libc lacks posix_spawn itself, with a clear reason.
    if _spawn is None or _actions_init is None:  # pragma: no cover
        raise ImportError(
            errno.errorcode[errno.ENOSYS] + ": this libc has no posix_spawn"
        )


_probe()
