"""The pseudonymisation pipeline: plaintext CSV stream in, coded CSV stream out.

No Django, one concern a module (the C parts in datasets.native):
- `mapping`: which column is what, and how it is generalised.
- `framing`: where records start and end (quote parity, blocks, byte ranges).
- `records`: a plain block's fields found, and its coded records written, in C.
- `transforms`: column transforms (NHS numbers, dates, postcodes, formulas).
- `hashing`: the pseudonym, HMAC-SHA256 in C or Python.
- `number_table`: the distinct NHS numbers of a job, their codes and register status.
- `orchestration`: one byte range through all of the above.
- `report`: what a job reports, and why it stopped.

Callers import from the module that owns the thing; the names below are the entry
points kept here for scripts.
"""

from __future__ import annotations

from datasets.pipeline.hashing import NATIVE_HMAC
from datasets.pipeline.orchestration import patients_by_practice, pseudonymise

__all__ = ["NATIVE_HMAC", "patients_by_practice", "pseudonymise"]
