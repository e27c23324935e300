"""Build the pseudonymisation jobs' C modules.

- `datasets.native._hmac`: HMAC-SHA256 of many short messages in one call, on OpenSSL 3's
  HMAC (EVP_MAC "HMAC" with SHA-256, which uses the CPU's SHA instructions where there
  are some): the same digests as datasets.pipeline.hashing.Hasher computes in Python.
- `datasets.native._records`: the fields of a block of CSV records found and the coded
  records written (datasets.pipeline.records), and the hash table of the NHS numbers a
  job has seen (datasets.pipeline.number_table). CSV syntax and bookkeeping only: every
  rule of the domain (which number is valid, how a date is generalised, what a formula
  is) stays in Python and reaches the C code as data.

Run by `make` when it installs (`python -m datasets.native.build`). Without a C compiler
or OpenSSL 3's headers the build fails loudly (exit status 1, so `make` stops); the
built modules are then checked (the HMAC against Python's hmac).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from cffi import FFI

CDEF = """
int hmac_sha256_many(const unsigned char *key, size_t key_length,
                     const unsigned char *messages, size_t count, size_t width,
                     unsigned char *out, size_t hex_length);
"""

SOURCE = r"""
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

/* The digest of each message, HMAC-SHA256(key, messages[width * i ... width * (i + 1)]):
 * - hex_length 0: its 32 bytes, at out[32 * i ...];
 * - else: its first hex_length / 2 bytes in lower-case hex, at out[hex_length * i ...]
 *   (a truncated HMAC, RFC 2104 section 5).
 *
 * OpenSSL 3's EVP_MAC interface: one context, keyed once; each message re-initialises
 * it without a key, which restarts from the keyed inner and outer states (no new key
 * schedule). Returns 1, or 0 if OpenSSL failed or hex_length is odd or above 64. */
static int hmac_sha256_many(const unsigned char *key, size_t key_length,
                            const unsigned char *messages, size_t count, size_t width,
                            unsigned char *out, size_t hex_length)
{
    static const char hex[] = "0123456789abcdef";
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[2];
    char digest[] = "SHA256";
    unsigned char one[32];
    size_t i, k, written = 0;
    int ok = mac != NULL && hex_length % 2 == 0 && hex_length <= 64;

    if (ok) {
        ctx = EVP_MAC_CTX_new(mac);
        ok = ctx != NULL;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    /* A zero-length key is allowed by RFC 2104; OpenSSL wants a pointer all the same. */
    ok = ok && EVP_MAC_init(ctx, key_length ? key : (const unsigned char *)"", key_length, params);
    for (i = 0; ok && i < count; i++) {
        ok = (i == 0 || EVP_MAC_init(ctx, NULL, 0, NULL))
             && EVP_MAC_update(ctx, messages + i * width, width)
             && EVP_MAC_final(ctx, hex_length ? one : out + i * 32, &written, 32)
             && written == 32;
        for (k = 0; ok && k < hex_length / 2; k++) {
            out[i * hex_length + 2 * k] = hex[one[k] >> 4];
            out[i * hex_length + 2 * k + 1] = hex[one[k] & 15];
        }
    }
    OPENSSL_cleanse(one, sizeof one);
    EVP_MAC_CTX_free(ctx); /* cleanses the keyed states */
    EVP_MAC_free(mac);
    return ok;
}
"""


RECORDS_CDEF = """
int64_t scan_records(const unsigned char *data, int64_t size, int64_t columns,
                     int64_t capacity, int32_t *spans, uint8_t *escaped);
int64_t gather_column(const unsigned char *data, const int32_t *spans, const uint8_t *escaped,
                      int64_t records, int64_t columns, int64_t column, const uint8_t *keep,
                      int32_t *offsets, unsigned char *out);
int any_first_byte(const unsigned char *data, const int32_t *spans, int64_t records,
                   int64_t columns, int64_t column, const uint8_t *table);
int64_t write_records(const unsigned char *data, const int32_t *spans, int64_t records,
                      int64_t columns, const uint8_t *keep, const int64_t *plan,
                      int64_t outputs, int32_t **sub_offsets, unsigned char **sub_data,
                      unsigned char *out);
int64_t slots_find_or_add(uint64_t *table, int64_t mask, const int64_t *ids, int64_t count,
                          int64_t next_slot, int64_t *slots, int64_t *fresh);
void slots_rehash(const uint64_t *table, int64_t capacity, uint64_t *new_table, int64_t new_mask);
void gather_rows(const unsigned char *table, int64_t width, const int64_t *index, int64_t count,
                 unsigned char *out);
int64_t vault_rows_new(int32_t *vault, const int64_t *slots, const int32_t *practices,
                       int64_t count, int64_t *fresh, int64_t *other, int64_t *others);
"""

RECORDS_SOURCE = r"""
#include <stdint.h>
#include <string.h>

/* A valid UTF-8 sequence (RFC 3629: no overlong forms, no surrogates, up to U+10FFFF). */
static int valid_utf8(const unsigned char *s, int64_t n)
{
    int64_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) { i++; continue; }
        int64_t more; unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) more = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            more = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            more = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else return 0;
        if (i + more >= n) return 0; /* cut short by the end */
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (int64_t k = 2; k <= more; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
        i += more + 1;
    }
    return 1;
}

/* Find the fields of a block of whole CSV records (RFC 4180: comma, double quote, doubled
 * quotes inside quotes, records ending in a newline or the end of the block).
 *
 * For record r, field c: spans[2 * (r * columns + c)] is where its value starts and
 * spans[... + 1] where it ends (between its quotes if quoted); escaped[r * columns + c]
 * is 1 if the value holds doubled quotes. Returns the number of records, or -1 where the
 * block is not plain: a blank line, a carriage return, a newline inside quotes, a quote
 * inside an unquoted value or text after a closing quote, a record without `columns`
 * fields, invalid UTF-8, or more than `capacity` records. Such a block is read by the
 * general path (pyarrow), which reports what is wrong by line. */
/* Bit 7 of each byte of the result is set where that byte of x equals the byte repeated
 * in `pattern`, at least for the lowest such byte (higher ones may be false positives):
 * enough to find the first. Eight bytes a step, no branch per byte. */
#define ONES 0x0101010101010101ULL
static inline uint64_t bytes_equal(uint64_t x, uint64_t pattern)
{
    uint64_t y = x ^ pattern;
    return (y - ONES) & ~y & (ONES << 7);
}

/* The first position from pos on (before size) of a quote mark, or of a quote, comma or
 * newline where `any_stop`; size if none. */
static inline int64_t next_stop(const unsigned char *data, int64_t pos, int64_t size,
                                int any_stop)
{
    while (pos + 8 <= size) {
        uint64_t word, found;
        memcpy(&word, data + pos, 8);
        found = bytes_equal(word, ONES * '"');
        if (any_stop) found |= bytes_equal(word, ONES * ',') | bytes_equal(word, ONES * '\n');
        if (found) return pos + (__builtin_ctzll(found) >> 3);
        pos += 8;
    }
    while (pos < size && data[pos] != '"' && !(any_stop && (data[pos] == ',' || data[pos] == '\n')))
        pos++;
    return pos;
}

int64_t scan_records(const unsigned char *data, int64_t size, int64_t columns,
                     int64_t capacity, int32_t *spans, uint8_t *escaped)
{
    int64_t pos = 0, records = 0, ended = 0, newlines = 0, i;
    int wide = 0;

    /* Carriage returns and newlines inside quotes are the general path's: a newline is
     * looked for only between fields, and the newlines counted here must each end a
     * record. */
    if (memchr(data, '\r', (size_t)size)) return -1;
    for (i = 0; i < size; i++) {
        wide |= data[i] & 0x80;
        newlines += data[i] == '\n';
    }
    if (wide && !valid_utf8(data, size)) return -1;
    while (pos < size) {
        int32_t *span = spans + 2 * records * columns;
        uint8_t *esc = escaped + records * columns;
        int64_t field = 0;
        if (records == capacity || data[pos] == '\n') return -1;
        for (;;) {
            int64_t start, end;
            uint8_t doubled = 0;
            if (field == columns) return -1;
            if (pos < size && data[pos] == '"') {
                start = ++pos;
                for (;;) {
                    pos = next_stop(data, pos, size, 0);
                    if (pos >= size) return -1; /* never closed */
                    if (pos + 1 < size && data[pos + 1] == '"') {
                        doubled = 1;
                        pos += 2;
                        continue;
                    }
                    break;
                }
                end = pos++;
                if (pos < size && data[pos] != ',' && data[pos] != '\n') return -1;
            } else {
                start = pos;
                pos = next_stop(data, pos, size, 1);
                if (pos < size && data[pos] == '"') return -1;
                end = pos;
            }
            span[2 * field] = (int32_t)start;
            span[2 * field + 1] = (int32_t)end;
            esc[field] = doubled;
            field++;
            if (pos >= size || data[pos] == '\n') {
                ended += pos < size;
                pos++;
                break;
            }
            pos++; /* the comma */
        }
        if (field != columns) return -1;
        records++;
    }
    return ended == newlines ? records : -1;
}

/* Gather one column's values (of the records whose keep byte is 1, or of all where keep
 * is NULL) into an Arrow string array's offsets and data, doubled quotes made single.
 * Returns the bytes of data written. */
int64_t gather_column(const unsigned char *data, const int32_t *spans, const uint8_t *escaped,
                      int64_t records, int64_t columns, int64_t column, const uint8_t *keep,
                      int32_t *offsets, unsigned char *out)
{
    int64_t r, n = 0, at = 0;
    offsets[0] = 0;
    for (r = 0; r < records; r++) {
        const int32_t *span = spans + 2 * (r * columns + column);
        if (keep && !keep[r]) continue;
        if (!escaped[r * columns + column]) {
            memcpy(out + at, data + span[0], (size_t)(span[1] - span[0]));
            at += span[1] - span[0];
        } else {
            int64_t i;
            for (i = span[0]; i < span[1]; i++) {
                out[at++] = data[i];
                if (data[i] == '"') i++;
            }
        }
        offsets[++n] = (int32_t)at;
    }
    return at;
}

/* 1 if any value of the column begins with a byte whose entry in `table` is 1. */
int any_first_byte(const unsigned char *data, const int32_t *spans, int64_t records,
                   int64_t columns, int64_t column, const uint8_t *table)
{
    int64_t r;
    for (r = 0; r < records; r++) {
        const int32_t *span = spans + 2 * (r * columns + column);
        if (span[1] > span[0] && table[data[span[0]]]) return 1;
    }
    return 0;
}

/* Write the records whose keep byte is 1 as CSV, every value quoted (doubled quotes inside),
 * a newline after each: pyarrow's write_csv with quoting_style="needed" on string columns.
 * Output column j is the record's field plan[j] where plan[j] >= 0, else value k of the
 * substitute string array -plan[j] - 1 (offsets, data), k counting the kept records.
 * `out` holds at least 2 * size + kept * (3 * outputs + 1) + 2 * (the substitutes' bytes).
 * Returns the bytes written. */
int64_t write_records(const unsigned char *data, const int32_t *spans, int64_t records,
                      int64_t columns, const uint8_t *keep, const int64_t *plan,
                      int64_t outputs, int32_t **sub_offsets, unsigned char **sub_data,
                      unsigned char *out)
{
    int64_t r, j, k = 0, at = 0;
    for (r = 0; r < records; r++) {
        if (!keep[r]) continue;
        for (j = 0; j < outputs; j++) {
            const unsigned char *from;
            int64_t length;
            if (j) out[at++] = ',';
            out[at++] = '"';
            if (plan[j] >= 0) {
                /* A field's bytes between its quotes are already escaped as CSV wants. */
                const int32_t *span = spans + 2 * (r * columns + plan[j]);
                memcpy(out + at, data + span[0], (size_t)(span[1] - span[0]));
                at += span[1] - span[0];
            } else {
                const int32_t *o = sub_offsets[-plan[j] - 1];
                from = sub_data[-plan[j] - 1] + o[k];
                length = o[k + 1] - o[k];
                if (!memchr(from, '"', (size_t)length)) {
                    memcpy(out + at, from, (size_t)length);
                    at += length;
                } else {
                    int64_t i;
                    for (i = 0; i < length; i++) {
                        out[at++] = from[i];
                        if (from[i] == '"') out[at++] = '"';
                    }
                }
            }
            out[at++] = '"';
        }
        out[at++] = '\n';
        k++;
    }
    return at;
}

/* The NHS numbers a job has seen, in an open-addressing hash table of one 64-bit word
 * per entry: the number in the low 34 bits (every 10-digit number fits), its slot in the
 * high 30; all ones is empty. Capacity mask + 1, a power of two, kept at most half full
 * by the caller. Rows are looked up a few ahead of their turn (prefetched): a job's table
 * outgrows the CPU's caches, and each look-up would otherwise wait for memory. */
#define KEY_BITS 34
#define KEY_MASK ((1ULL << KEY_BITS) - 1)
#define EMPTY (~0ULL)
#define AHEAD 16

static inline int64_t slot_hash(int64_t key, int64_t mask)
{
    uint64_t h = (uint64_t)key * 0x9E3779B97F4A7C15ULL;
    return (int64_t)((h ^ (h >> 31)) & (uint64_t)mask);
}

/* slots[i]: the slot of ids[i] (-1 where ids[i] < 0); a number not in the table is added
 * with the next slot from next_slot on, in the order first met, and listed in fresh.
 * Returns how many were added. */
int64_t slots_find_or_add(uint64_t *table, int64_t mask, const int64_t *ids, int64_t count,
                          int64_t next_slot, int64_t *slots, int64_t *fresh)
{
    int64_t i, added = 0;
    for (i = 0; i < count; i++) {
        int64_t id = ids[i], at;
        if (i + AHEAD < count && ids[i + AHEAD] >= 0)
            __builtin_prefetch(table + slot_hash(ids[i + AHEAD], mask));
        if (id < 0) {
            slots[i] = -1;
            continue;
        }
        at = slot_hash(id, mask);
        for (;;) {
            uint64_t entry = table[at];
            if (entry == EMPTY) {
                table[at] = (uint64_t)id | ((uint64_t)(next_slot + added) << KEY_BITS);
                slots[i] = next_slot + added;
                fresh[added++] = id;
                break;
            }
            if ((entry & KEY_MASK) == (uint64_t)id) {
                slots[i] = (int64_t)(entry >> KEY_BITS);
                break;
            }
            at = (at + 1) & mask;
        }
    }
    return added;
}

void slots_rehash(const uint64_t *table, int64_t capacity, uint64_t *new_table, int64_t new_mask)
{
    int64_t i;
    for (i = 0; i < capacity; i++) {
        int64_t at;
        if (table[i] == EMPTY) continue;
        at = slot_hash((int64_t)(table[i] & KEY_MASK), new_mask);
        while (new_table[at] != EMPTY) at = (at + 1) & new_mask;
        new_table[at] = table[i];
    }
}

/* out[i] = table[index[i]], rows of `width` bytes (a job's codes by slot), prefetched. */
void gather_rows(const unsigned char *table, int64_t width, const int64_t *index, int64_t count,
                 unsigned char *out)
{
    int64_t i;
    for (i = 0; i < count; i++) {
        if (i + AHEAD < count) __builtin_prefetch(table + index[i + AHEAD] * width);
        memcpy(out + i * width, table + index[i] * width, (size_t)width);
    }
}

/* The vault's new rows in a block of kept rows (slot, practice): where a slot has no
 * practice yet (vault[slot] < 0) it takes the row's and the row is listed in `fresh`; a
 * row at another practice than its slot's is listed in `other`. Returns the fresh count;
 * *others is set to the other count. */
int64_t vault_rows_new(int32_t *vault, const int64_t *slots, const int32_t *practices,
                       int64_t count, int64_t *fresh, int64_t *other, int64_t *others)
{
    int64_t i, found = 0, elsewhere = 0;
    for (i = 0; i < count; i++) {
        int32_t *at = vault + slots[i];
        if (i + AHEAD < count) __builtin_prefetch(vault + slots[i + AHEAD]);
        if (*at < 0) {
            *at = practices[i];
            fresh[found++] = i;
        } else if (*at != practices[i]) {
            other[elsewhere++] = i;
        }
    }
    *others = elsewhere;
    return found;
}
"""


def builders() -> list[FFI]:
    hmac_ffi = FFI()
    hmac_ffi.cdef(CDEF)
    hmac_ffi.set_source("datasets.native._hmac", SOURCE, libraries=["crypto"])
    records_ffi = FFI()
    records_ffi.cdef(RECORDS_CDEF)
    records_ffi.set_source(
        "datasets.native._records", RECORDS_SOURCE, extra_compile_args=["-O3", "-std=c99"]
    )
    return [hmac_ffi, records_ffi]


def main() -> int:
    here = Path(__file__).resolve().parent
    work = Path(tempfile.mkdtemp(prefix="phm-native-"))
    cwd = os.getcwd()
    try:
        os.chdir(work)  # away from the project's pyproject.toml, which setuptools would read
        for ffi in builders():
            built = Path(ffi.compile(tmpdir=str(work), verbose=False))
            shutil.copy2(built, here / built.name)
    except Exception as exc:
        print(
            "\n*** datasets.native: the jobs' C modules could NOT be built: "
            f"{exc}\n*** Install a C compiler and OpenSSL 3's headers (Debian: gcc "
            "libssl-dev), then run `make` again.\n",
            file=sys.stderr,
        )
        return 1
    finally:
        os.chdir(cwd)
        shutil.rmtree(work, ignore_errors=True)
    return _self_test()


def _self_test() -> int:
    """Check the built module against Python's hmac (RFC 4231 test case 2, and a long key)."""
    import hashlib
    import hmac
    import importlib

    import datasets.native._hmac as built

    importlib.reload(built)
    for key in (b"Jefe", b"k" * 100, b""):
        message = b"what do ya want for nothing?"
        out, hex_out = bytearray(64), bytearray(64)
        ok = built.lib.hmac_sha256_many(
            key, len(key), message * 2, 2, len(message), built.ffi.from_buffer(out), 0
        ) and built.lib.hmac_sha256_many(
            key, len(key), message * 2, 2, len(message), built.ffi.from_buffer(hex_out), 32
        )
        want = hmac.new(key, message, hashlib.sha256).digest()
        if not ok or bytes(out) != want * 2 or bytes(hex_out) != want[:16].hex().encode() * 2:
            print("*** datasets.native: the built HMAC gives wrong digests.", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
