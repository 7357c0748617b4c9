"""The supervisor, in rooms: `_policy` (the pure restart, intensity and
shutdown rules), `_spec` (`ChildSpec`, `SupervisorEvent`, the sinks),
`_readiness` (the ready checks and the ready race), `_child`
(`SupervisedChild` and one life of it), `_notifications` (a child's
``sd_notify`` socket and watchdog), `_lives` (what happens to the children
between start and shutdown: bring-up, lives, restarts) and `_supervisor`
(`Supervisor`: the block, the public operations, the shutdown).

Layers point one way: nothing here imports the CLI, the fleet files or the
control channel; the children are started through `trioproc.spawn` only.
"""
