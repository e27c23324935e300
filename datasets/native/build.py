"""Build `datasets.native._hmac`: HMAC-SHA256 of many short messages in one call.

Run by `make` when it installs (`python -m datasets.native.build`). The C code is
OpenSSL 3's HMAC (EVP_MAC "HMAC" with SHA-256, which uses the CPU's SHA instructions where
there are some), the same digests as datasets.pipeline.hashing.Hasher computes in
Python. Without a C compiler or OpenSSL 3's headers the build fails loudly (exit status
1, so `make` stops); the built module is then checked against Python's hmac.
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
                     unsigned char *out);
"""

SOURCE = r"""
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

/* out[32 * i ...] = HMAC-SHA256(key, messages[width * i ... width * (i + 1)])
 *
 * OpenSSL 3's EVP_MAC interface: one context, keyed once; each message re-initialises
 * it without a key, which restarts from the keyed inner and outer states (no new key
 * schedule). Returns 1, or 0 if OpenSSL failed. */
static int hmac_sha256_many(const unsigned char *key, size_t key_length,
                            const unsigned char *messages, size_t count, size_t width,
                            unsigned char *out)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[2];
    char digest[] = "SHA256";
    size_t i, written = 0;
    int ok = mac != NULL;

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
             && EVP_MAC_final(ctx, out + i * 32, &written, 32)
             && written == 32;
    }
    EVP_MAC_CTX_free(ctx); /* cleanses the keyed states */
    EVP_MAC_free(mac);
    return ok;
}
"""


def builder() -> FFI:
    ffi = FFI()
    ffi.cdef(CDEF)
    ffi.set_source("datasets.native._hmac", SOURCE, libraries=["crypto"])
    return ffi


def main() -> int:
    here = Path(__file__).resolve().parent
    work = Path(tempfile.mkdtemp(prefix="phm-native-"))
    cwd = os.getcwd()
    try:
        os.chdir(work)  # away from the project's pyproject.toml, which setuptools would read
        built = Path(builder().compile(tmpdir=str(work), verbose=False))
        shutil.copy2(built, here / built.name)
    except Exception as exc:
        print(
            "\n*** datasets.native: the jobs' HMAC in C could NOT be built: "
            f"{exc}\n*** Install a C compiler and OpenSSL 3's headers (Debian: gcc "
            "libssl-dev), then run `make` again. Without it jobs hash in Python, several "
            "times slower.\n",
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
        out = bytearray(64)
        ok = built.lib.hmac_sha256_many(
            key, len(key), message * 2, 2, len(message), built.ffi.from_buffer(out)
        )
        want = hmac.new(key, message, hashlib.sha256).digest()
        if not ok or bytes(out) != want * 2:
            print("*** datasets.native: the built HMAC gives wrong digests.", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
