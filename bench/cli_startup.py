"""How long `heliostat --help` and `validate` take from the zipapp, warm, next to the
bare interpreter's own start-up (the floor no Python CLI can beat). Prints JSON.

    python3 bench/cli_startup.py [--runs N] [--zipapp dist/heliostat.pyz]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(command: list[str], runs: int) -> dict[str, float]:
    subprocess.run(command, capture_output=True, check=True)  # warm: unpacked, cached
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        samples.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(samples), 4), "min_s": round(min(samples), 4),
            "max_s": round(max(samples), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--zipapp", type=Path, default=ROOT / "dist" / "heliostat.pyz")
    args = parser.parse_args()
    python = [sys.executable, "-I", "-S"]
    example = str(ROOT / "examples" / "kubernetes.yaml")
    results = {
        "reference_bare_interpreter": timed([*python, "-c", "pass"], args.runs),
        "heliostat_help": timed([*python, str(args.zipapp), "--help"], args.runs),
        "heliostat_validate_example": timed([*python, str(args.zipapp), "validate", "-f",
                                             example], args.runs),
    }
    results["help_target_s"] = 0.5
    results["python"] = sys.version.split()[0]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
