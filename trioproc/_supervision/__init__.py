"""The supervisor, in rooms: `_policy` (the pure restart, intensity and
shutdown rules), `_spec` (`ChildSpec`, `SupervisorEvent`, the sinks),
`_readiness` (the ready checks and the ready race), `_child`
(`SupervisedChild` and one life of it), `_notifications` (a child's
``sd_notify`` socket and watchdog) and `_supervisor` (`Supervisor`, which
carries the policy out with Trio).

Layers point one way: nothing here imports the CLI, the fleet files or the
control channel; the children are started through `trioproc.spawn` only.
"""
