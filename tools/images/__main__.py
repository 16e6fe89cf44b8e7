"""python3 -m tools.images {build,lock} [NAME...]: see docs/images.md."""

from __future__ import annotations

import argparse
import sys
import time

from tools.images import builder
from tools.images.recipes import RecipeError, build_order, discover


def main() -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tools.images", description=__doc__)
    parser.add_argument("verb", choices=["build", "lock", "list"])
    parser.add_argument("names", nargs="*", help="images (default: all); parents come along")
    args = parser.parse_args()
    try:
        recipes = build_order(discover(), args.names or None)
    except RecipeError as error:
        print(f"images: {error}", file=sys.stderr)
        return 2
    total = time.monotonic()
    for recipe in recipes:
        if args.verb == "list":
            print(f"{recipe.name}\t{builder.tag(recipe.name)}\t{recipe.directory}")
            continue
        started = time.monotonic()
        try:
            if args.verb == "lock" and (not args.names or recipe.name in args.names):
                for written in builder.lock(recipe):
                    print(f"images: locked {written}")
            image_id, built = builder.build(recipe)
        except (RuntimeError, ValueError, OSError) as error:
            print(f"images: {recipe.name} FAILED: {error}", file=sys.stderr)
            return 1
        state = "built" if built else "up to date"
        print(f"images: {builder.tag(recipe.name)} {state} ({time.monotonic() - started:.1f}s, "
              f"{image_id[7:19]})", flush=True)
    if args.verb != "list":
        print(f"images: {len(recipes)} ready ({time.monotonic() - total:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
