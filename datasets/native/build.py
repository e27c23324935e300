"""Build `datasets.native._hmac`: HMAC-SHA256 of many short messages in one call.

Run by `make` when it installs (`python -m datasets.native.build`). The C code is the
RFC 2104 construction over OpenSSL's SHA-256 (which uses the CPU's SHA instructions
where there are some), the same as datasets.pipeline.Hasher does in Python. Without a C
compiler or OpenSSL's headers the build is skipped and the pipeline hashes in Python:
the codes are the same, only slower.
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
#define OPENSSL_SUPPRESS_DEPRECATED  /* SHA256_Init and friends: deprecated in 3.0, kept */
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

/* out[32 * i ...] = HMAC-SHA256(key, messages[width * i ... width * (i + 1)]) */
static int hmac_sha256_many(const unsigned char *key, size_t key_length,
                            const unsigned char *messages, size_t count, size_t width,
                            unsigned char *out)
{
    unsigned char block[SHA256_CBLOCK] = {0}, pad[SHA256_CBLOCK];
    unsigned char inner_digest[SHA256_DIGEST_LENGTH];
    SHA256_CTX inner, outer, ctx;
    size_t i;
    int ok = 1;

    if (key_length > SHA256_CBLOCK) {
        if (SHA256(key, key_length, block) == NULL)
            return 0;
    } else {
        memcpy(block, key, key_length);
    }
    for (i = 0; i < SHA256_CBLOCK; i++)
        pad[i] = block[i] ^ 0x36;
    ok &= SHA256_Init(&inner) & SHA256_Update(&inner, pad, SHA256_CBLOCK);
    for (i = 0; i < SHA256_CBLOCK; i++)
        pad[i] = block[i] ^ 0x5c;
    ok &= SHA256_Init(&outer) & SHA256_Update(&outer, pad, SHA256_CBLOCK);
    for (i = 0; ok && i < count; i++) {
        ctx = inner;
        ok &= SHA256_Update(&ctx, messages + i * width, width);
        ok &= SHA256_Final(inner_digest, &ctx);
        ctx = outer;
        ok &= SHA256_Update(&ctx, inner_digest, SHA256_DIGEST_LENGTH);
        ok &= SHA256_Final(out + i * SHA256_DIGEST_LENGTH, &ctx);
    }
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(pad, sizeof pad);
    OPENSSL_cleanse(inner_digest, sizeof inner_digest);
    OPENSSL_cleanse(&inner, sizeof inner);
    OPENSSL_cleanse(&outer, sizeof outer);
    OPENSSL_cleanse(&ctx, sizeof ctx);
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
    except Exception as exc:  # no compiler, no OpenSSL headers: the pipeline hashes in Python
        print(f"datasets.native: not built ({exc}); jobs hash in Python.", file=sys.stderr)
    finally:
        os.chdir(cwd)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
