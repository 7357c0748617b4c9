"""The shell scripts a remote child runs: the wrapper and the stop sequence,
and how their arguments are quoted for the remote login shell."""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from .._options import StrOrBytesPath

if TYPE_CHECKING:
    pass


#: The remote side's poll step, in seconds, where ``sleep`` takes fractions
#: (GNU, BusyBox, the BSDs); elsewhere whole seconds.
STEP: Final = 0.05


# The remote wrapper. Positional parameters: the marker, the fd of the
# report, the poll ticks of kill_after (fine, coarse), cwd ("" for none),
# the search path ("-" for the inherited PATH), the program name, then
# the command to exec: "env -i NAME=VALUE ..." and argv, or argv alone.
WRAPPER: Final = r"""
m=$1 rfd=$2 fine=$3 coarse=$4 cwd=$5 spath=$6 prog=$7
shift 7
unset CDPATH
w=$$ parent=$PPID
if sleep 0.01 2>/dev/null; then step=0.05 ticks=$fine; else step=1 ticks=$coarse; fi
(
  trap '' HUP INT QUIT TERM USR1 USR2 ALRM PIPE WINCH
  exec </dev/null >/dev/null 2>&1
  while kill -s 0 -- "$parent" 2>/dev/null; do sleep "$step"; done
  kill -s TERM -- "-$w"; kill -s CONT -- "-$w"
  i=0
  while kill -s 0 -- "$w" 2>/dev/null && [ "$i" -lt "$ticks" ]; do
    sleep "$step"; i=$((i + 1))
  done
  kill -s KILL -- "-$w"
) &
watcher=$!
fail() {
  printf '%s %s\n' "$m" "$*" >&"$rfd"
  kill -s KILL -- "$watcher" 2>/dev/null
  exit 127
}
if [ -n "$cwd" ]; then
  if [ ! -e "$cwd" ]; then fail ENOENT cwd
  elif [ ! -d "$cwd" ]; then fail ENOTDIR cwd
  elif ! cd "$cwd" 2>/dev/null; then fail EACCES cwd
  fi
fi
[ "$spath" = - ] && spath=$PATH
case $prog in
*/*)
  if [ ! -e "$prog" ]; then fail ENOENT program
  elif [ ! -f "$prog" ] || [ ! -x "$prog" ]; then fail EACCES program
  fi ;;
*)
  found= denied=
  IFS=:; set -f
  for d in $spath; do
    c=${d:-.}/$prog
    if [ -f "$c" ] && [ -x "$c" ]; then found=$c; break; fi
    [ -e "$c" ] && denied=$c
  done
  unset IFS; set +f
  if [ -z "$found" ]; then
    [ -n "$denied" ] && fail EACCES program
    fail ENOENT program
  fi ;;
esac
trap : HUP INT QUIT TERM USR1 USR2 ALRM PIPE WINCH
/bin/sh -c 'printf "%s pid %s %s\n" "$1" "$$" "$PPID" >&"$2"; shift 2; exec "$@"' \
  sh "$m" "$rfd" "$@"
s=$?
kill -s KILL -- "$watcher" 2>/dev/null
exit "$s"
"""

# The stop sequence, run on the remote host over the control socket.
# Parameters: the process group, the poll ticks of kill_after (fine,
# coarse) and of the grace after SIGKILL (fine, coarse). The group's leader
# is the wrapper, which exits once the program has: the group is ended
# when it has.
STOPPER: Final = r"""
g=$1
if sleep 0.01 2>/dev/null; then step=0.05 a=$2 b=$4; else step=1 a=$3 b=$5; fi
kill -s TERM -- "-$g" 2>/dev/null || exit 0
kill -s CONT -- "-$g" 2>/dev/null
i=0
while kill -s 0 -- "$g" 2>/dev/null && [ "$i" -lt "$a" ]; do
  sleep "$step"; i=$((i + 1))
done
kill -s KILL -- "-$g" 2>/dev/null
i=0
while kill -s 0 -- "$g" 2>/dev/null; do
  [ "$i" -ge "$b" ] && exit 1
  sleep "$step"; i=$((i + 1))
done
exit 0
"""


def _ticks(seconds: float) -> tuple[int, int]:
    return math.ceil(seconds / STEP), math.ceil(seconds)


def _quote(args: Sequence[StrOrBytesPath | int]) -> str:
    return " ".join(
        shlex.quote(str(a) if isinstance(a, int) else os.fsdecode(a)) for a in args
    )


def _script(script: str, args: Sequence[StrOrBytesPath | int]) -> str:
    """The command line that runs *script* with /bin/sh and *args*, quoted for
    the remote login shell (any POSIX shell)."""
    return f"exec /bin/sh -c {shlex.quote(script)} trioproc {_quote(args)}"
