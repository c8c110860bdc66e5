"""Launcher: join the cluster's cgroups and namespaces, then exec the given program.

    python -m paitient_localcluster.host.enter --netns P --holder PID --cwd DIR [--cgroup DIR ...] \
        -- PROGRAM ARGS...

The program replaces this process (same pid), so the cluster's pid files name the program.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .linux import Enter


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="paitient-enter", description=__doc__)
    parser.add_argument("--netns", type=Path, required=True)
    parser.add_argument("--holder", type=int, required=True)
    parser.add_argument("--cwd", type=Path, required=True)
    parser.add_argument("--cgroup", type=Path, action="append", default=[])
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no program given")
    Enter(args.netns, args.holder, tuple(args.cgroup), args.cwd).join()
    os.execvp(command[0], command)  # noqa: S606 - the cluster's own programs


if __name__ == "__main__":
    sys.exit(main())
