"""Run the cancellation soak of tests/soak.py by hand, at any size.

    .venv/bin/python benchmarks/soak.py --rounds 2000 --seed 1

Prints how many rounds each scenario had and what was left over: escaped
non-cancellation errors, fds, zombies and live descendants (all must be 0).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.soak import soak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.monotonic()
    result = trio.run(soak, args.rounds, args.seed)
    for name, count in sorted(result.by_scenario.items()):
        print(f"{name:>16}: {count} rounds")
    print(
        f"{result.rounds} rounds in {time.monotonic() - started:.1f}s: "
        f"{len(result.escaped)} escaped errors, {result.fds} fds, "
        f"{result.zombies} zombies, {result.descendants} live descendants"
    )
    for line in result.escaped[:20]:
        print("  escaped:", line)
    failed = result.escaped or result.fds or result.zombies or result.descendants
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
