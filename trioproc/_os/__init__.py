"""How this operating system starts, feeds, watches and ends a process.

Nothing here knows a protocol: the transport above hands this layer bytes and
callbacks. The pieces, each a module:

* `_launch` -- the launch plan: pipes, the fd layout, and the start itself
  (`_posix_spawn`, libc's ``posix_spawn`` through ctypes; `_trampoline`, the
  uid/gid step run in the child);
* `_reader` -- a read end and its pump task;
* `_writer` -- a write end, its queue and its writer task;
* `_reaper` -- waiting for the exit, and ending the child's process tree;
* `_cgroup` -- a cgroup-v2 cgroup of the child's own (Linux).

The seam a second backend implements is in `trioproc._os._seam`.
"""
