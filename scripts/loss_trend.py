"""Whether a training loss in a Lightning `metrics.csv` is finite and falling.

    python scripts/loss_trend.py runs/x/version_0/metrics.csv train/loss [--finite-only]

Prints the mean of the first and of the last fifth of the logged values; exits 1 when a value is
not finite or the last fifth's mean is not below the first's. `--finite-only` (the CPU rehearsal
of `scripts/gpu_check.sh`: a few batches, whose loss need not fall yet) exits 1 only for the
first.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path


def loss_trend(path: Path, column: str) -> tuple[float, float, int]:
    """(mean of the first fifth, mean of the last fifth, values) of `column`'s logged values.

    Raises:
        ValueError: the column is absent, has fewer than 5 values, or a value is not finite.
    """
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or column not in rows[0]:
        raise ValueError(f"{path} has no column {column!r}")
    values = [float(row[column]) for row in rows if row.get(column)]
    if len(values) < 5:
        raise ValueError(f"{column} has {len(values)} values in {path}; need at least 5")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{column} has a non-finite value in {path}")
    fifth = max(1, len(values) // 5)
    return sum(values[:fifth]) / fifth, sum(values[-fifth:]) / fifth, len(values)


def main(argv: list[str]) -> int:
    """Print the trend; 0 when finite and falling (or finite, with `--finite-only`), 1
    otherwise."""
    finite_only = "--finite-only" in argv
    path, column = Path(argv[0]), argv[1]
    try:
        first, last, count = loss_trend(path, column)
    except (OSError, ValueError) as exc:
        print(f"loss_trend: {exc}")
        return 1
    falling = last < first
    print(
        f"{column}: {count} values, first fifth {first:.4f} → last fifth {last:.4f}: "
        f"{'falling' if falling else 'NOT falling'}"
    )
    return 0 if falling or finite_only else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
