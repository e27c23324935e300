"""Write a synthetic GP extract (fixed seed) for the pseudonymisation benchmark and tests.

Columns: nhs_number, forename, surname, date_of_birth, postcode, practice,
event_date, event_code, measure_1, measure_2. About five events per patient,
in random order; NHS numbers are in the 999 test range with valid check digits.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

FORENAMES = np.array(
    [
        "Olivia",
        "Amelia",
        "Isla",
        "Ava",
        "Noah",
        "Oliver",
        "George",
        "Arthur",
        "Leo",
        "Muhammad",
        "Freya",
        "Ivy",
    ]
)
SURNAMES = np.array(
    [
        "Smith",
        "Jones",
        "Taylor",
        "Brown",
        "Williams",
        "Wilson",
        "Johnson",
        "Davies",
        "Patel",
        "Robinson",
        "Wright",
        "Thompson",
    ]
)
DISTRICTS = np.array(["CB1", "PE13", "DE4", "DE1", "EX1", "TQ13", "DN34", "DN35", "YO1", "LS2"])
CODES = np.array(["XaZ89", "44J9.", "246..", "C10..", "H33..", "G20..", "1371.", "22K.."])
WEIGHTS = np.array([10, 9, 8, 7, 6, 5, 4, 3, 2])


def nhs_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """Return n distinct valid NHS numbers in the 999 range."""
    body = rng.choice(10**6, size=min(10**6, int(n * 1.3) + 10), replace=False)
    digits = np.zeros((body.size, 9), dtype=np.int64)
    digits[:, 0:3] = 9
    for i in range(6):
        digits[:, 8 - i] = (body // 10**i) % 10
    check = 11 - (digits @ WEIGHTS) % 11
    check[check == 11] = 0
    ok = check != 10
    numbers = (999 * 10**6 + body[ok]) * 10 + check[ok]
    return numbers[:n].astype(np.int64)


def generate(rows: int, seed: int = 2026) -> pa.Table:
    rng = np.random.default_rng(seed)
    # The 999 test range holds about 909,000 valid numbers: cap the patients below that.
    patients = max(1, min(rows // 5, 800_000))
    numbers = nhs_numbers(rng, patients)
    forename = FORENAMES[rng.integers(0, FORENAMES.size, patients)]
    surname = SURNAMES[rng.integers(0, SURNAMES.size, patients)]
    dob = np.datetime64("1930-01-01") + rng.integers(0, 365 * 90, patients).astype("timedelta64[D]")
    postcode = np.char.add(
        np.char.add(DISTRICTS[rng.integers(0, DISTRICTS.size, patients)], " "),
        np.char.add(
            rng.integers(1, 10, patients).astype(str),
            np.array(["AB", "XY", "QT", "LN"])[rng.integers(0, 4, patients)],
        ),
    )
    practice = np.array([f"P{900 + i:03d}01" for i in range(20)])[rng.integers(0, 20, patients)]
    who = rng.integers(0, patients, rows)
    event_date = np.datetime64("2024-01-01") + rng.integers(0, 700, rows).astype("timedelta64[D]")
    return pa.table(
        {
            "nhs_number": pa.array(numbers[who]).cast(pa.string()),
            "forename": forename[who],
            "surname": surname[who],
            "date_of_birth": pa.array(dob[who]).cast(pa.string()),
            "postcode": postcode[who],
            "practice": practice[who],
            "event_date": pa.array(event_date).cast(pa.string()),
            "event_code": CODES[rng.integers(0, CODES.size, rows)],
            "measure_1": np.round(rng.normal(120, 15, rows), 1).astype(str),
            "measure_2": rng.integers(0, 400, rows).astype(str),
        }
    )


def write(path: Path, rows: int, seed: int = 2026) -> Path:
    pcsv.write_csv(generate(rows, seed), path, pcsv.WriteOptions(quoting_style="needed"))
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rows", type=int)
    parser.add_argument("path", type=Path)
    args = parser.parse_args()
    write(args.path, args.rows)
