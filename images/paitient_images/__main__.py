"""``python -m paitient_images``: build the images, say where they are, relock their inputs.

build [NAME ...]   build every image (or the named ones) into the cache
paths              JSON: each built image's reference, archive and SBOM, and the tiny model
list               the images this repository builds, with their references
lock [--python]    resolve the Python locks and Debian pins again (then commit images/locks);
                   --python: the Python locks only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict

from paitient_images.build import build_images, lock
from paitient_images.cache import NotBuilt, cache_dir, images, tiny_model
from paitient_images.recipes import recipes
from paitient_images.steps import BuildError, log


def _paths() -> dict[str, object]:
    try:
        model: object = asdict(tiny_model())
    except NotBuilt:
        model = None
    return {
        "cache": str(cache_dir()),
        "images": {name: asdict(a) for name, a in images().items()},
        "tiny_model": model,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="paitient_images",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build images (all when none is named)")
    build.add_argument("names", nargs="*", metavar="NAME", help=", ".join(recipes()))
    sub.add_parser("paths", help="where the built images are (JSON)")
    sub.add_parser("list", help="the images and their references")
    relock = sub.add_parser("lock", help="resolve the locks again")
    relock.add_argument("--python", action="store_true", help="only the Python locks")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            started = time.monotonic()
            built = build_images(args.names)
            log(
                f"{len(built)} image(s) ready in {time.monotonic() - started:.0f} s; "
                f"`python -m paitient_images paths` says where"
            )
        elif args.command == "paths":
            print(json.dumps(_paths(), indent=2))
        elif args.command == "list":
            for recipe in recipes().values():
                print(f"{recipe.name:20} {recipe.reference}")
        else:
            lock(python_only=args.python)
    except BuildError as exc:
        print(f"[images] FAILED: {exc}", file=sys.stderr)
        return 1
    except NotBuilt as exc:
        print(f"[images] {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
