"""How this operating system starts, feeds, watches and ends a process.

Nothing here knows a protocol: the transport above hands this layer bytes and
callbacks, through the seam a backend implements (`_seam`: `Backend`,
`ChildProcess`, `ChildReader`, `ChildWriter`); `_backends` picks the backend.
The rooms, each a module:

* the Linux backend (`_linux`): `_launch` (the launch plan: pipes, the fd
  layout, the start itself through `_posix_spawn`, libc's ``posix_spawn`` by
  ctypes, and `_trampoline`, the uid/gid step run in the child), `_pty` (the
  pseudo-terminal), `_reader` (a read end and its pump), `_writer` (a write
  end and its writer task), `_reaper` (the exit, reaping, signals to the
  tree), `_watcher` (one task per run waiting for every child's exit),
  `_cgroup` (a cgroup-v2 cgroup of the child's own; `_cgroupfs` finds
  the hierarchy, `_pidfds` signals its listed processes);
* the portable backend (`_portable`: only what Trio offers everywhere):
  `_portable_child` (its child), `_stream_reader` and `_stream_writer` (its
  pump and writer over Trio streams), `_platform` (its POSIX hooks) and
  `_windows` (its Windows hooks);
* what both backends share: `_holds` (the holds on a pump), `_queued` (a
  writer's queue and turns), `_stop` (the stop sequence).
"""
