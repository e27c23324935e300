"""The same pseudonymisation done with polars: the comparison `bench/pseudonymise.py` runs.

`python bench/polars_pipeline.py EXTRACT OPTED_OUT OUTPUT KEY_HEX` prints one line of
JSON: seconds, rows out, peak memory (MiB) of this process. A lazy scan of the CSV, an
anti-join of the opted-out NHS numbers (one a line in OPTED_OUT), the HMAC-SHA256 of
each distinct remaining number (hmac over the unique values, truncated to 128 bits in
hex as the portal's codes), a join of the codes back, the same generalisation as the
naive baseline (year of birth, postcode district), and sink_csv. polars uses every core.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import resource
import sys
import time

import polars as pl


def run(extract: str, opted_out: str, output: str, key: bytes) -> dict:
    start = time.perf_counter()

    def codes(numbers: pl.Series) -> pl.Series:
        base = hmac.new(key, digestmod=hashlib.sha256)
        out = []
        for number in numbers.to_list():
            mac = base.copy()
            mac.update(number.encode())
            out.append(mac.hexdigest()[:32])
        return pl.Series(out, dtype=pl.String)

    rows = pl.scan_csv(extract, infer_schema=False)  # every column as text
    left_out = pl.scan_csv(
        opted_out, has_header=False, new_columns=["nhs_number"], infer_schema=False
    )
    kept = rows.join(left_out, on="nhs_number", how="anti")
    coded = (
        kept.select("nhs_number")
        .unique()
        .with_columns(pseudonym=pl.col("nhs_number").map_batches(codes, return_dtype=pl.String))
    )
    (
        kept.join(coded, on="nhs_number")
        .select(
            "pseudonym",
            pl.col("date_of_birth").str.slice(0, 4).alias("year_of_birth"),
            pl.col("postcode").str.split(" ").list.first().alias("district"),
            "practice",
            "event_date",
            "event_code",
            "measure_1",
            "measure_2",
        )
        .sink_csv(output)
    )
    seconds = time.perf_counter() - start
    rows_out = pl.scan_csv(output, infer_schema=False).select(pl.len()).collect().item()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "rows_out": rows_out, "peak_mib": peak_kib / 1024}


if __name__ == "__main__":
    extract, opted_out, output, key_hex = sys.argv[1:5]
    print(json.dumps(run(extract, opted_out, output, bytes.fromhex(key_hex))))
