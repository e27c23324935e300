"""Keyed blind indexes and field encryption, with keys from configuration.

- A blind index is the HMAC-SHA256 of a value under PHM_BLIND_INDEX_KEY: equal values
  give equal indexes, so the database can look a patient up by NHS number without
  holding the number; without the key an index cannot be reversed or even checked
  against a guess (10-digit numbers are too few to hide behind a plain hash).
- Field encryption is AES-256-GCM with a random 96-bit nonce under
  PHM_FIELD_ENCRYPTION_KEY. A token reads `<key id>$<base64url(nonce || ciphertext)>`;
  the key id is derived from the key, so a key listed in PHM_FIELD_ENCRYPTION_OLD_KEYS
  still decrypts what it encrypted while new values use the current key.

Keys are 32 random bytes, base64-encoded, in the environment (see README.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Callable
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KEY_BYTES = 32
NONCE_BYTES = 12
_SEPARATOR = "$"


class DecryptionError(ValueError):
    """The token is damaged, or no configured key encrypted it."""


def decode_key(value: str, *, name: str) -> bytes:
    """Return the 32 bytes of a base64-encoded key, or say which variable is wrong."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(
            f"{name} must be 32 random bytes in base64 (e.g. `openssl rand -base64 32`)."
        ) from None
    if len(raw) != KEY_BYTES:
        raise ImproperlyConfigured(
            f"{name} must be 32 bytes in base64; it decodes to {len(raw)} bytes."
        )
    return raw


def new_key() -> str:
    """Return a fresh random key, base64-encoded (for the demo and for operators)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def key_id(key: bytes) -> str:
    """Return the short public name of a key: the first 8 hex digits of a hash of it."""
    return hashlib.sha256(b"phm-field-key:" + key).hexdigest()[:8]


# --- blind index -----------------------------------------------------------------
@lru_cache(maxsize=4)
def _blind_index_mac(key_b64: str) -> hmac.HMAC:
    return hmac.new(decode_key(key_b64, name="PHM_BLIND_INDEX_KEY"), digestmod=hashlib.sha256)


def blind_indexer() -> Callable[[str], str]:
    """Return a fast function value -> hex HMAC-SHA256, keyed once (for bulk use)."""
    base = _blind_index_mac(settings.PHM_BLIND_INDEX_KEY)

    def index(value: str) -> str:
        mac = base.copy()
        mac.update(value.encode("utf-8"))
        return mac.hexdigest()

    return index


def blind_index(value: str) -> str:
    """Return the keyed blind index (64 hex digits) of a value, e.g. a normalised NHS number."""
    return blind_indexer()(value)


# --- field encryption --------------------------------------------------------------
@lru_cache(maxsize=4)
def _keyring(current_b64: str, old_b64: tuple[str, ...]) -> tuple[str, dict[str, AESGCM]]:
    current = decode_key(current_b64, name="PHM_FIELD_ENCRYPTION_KEY")
    ring = {key_id(current): AESGCM(current)}
    for value in old_b64:
        old = decode_key(value, name="PHM_FIELD_ENCRYPTION_OLD_KEYS")
        ring.setdefault(key_id(old), AESGCM(old))
    return key_id(current), ring


def _current_keyring() -> tuple[str, dict[str, AESGCM]]:
    return _keyring(
        settings.PHM_FIELD_ENCRYPTION_KEY, tuple(settings.PHM_FIELD_ENCRYPTION_OLD_KEYS)
    )


def field_encryptor(*, purpose: str) -> Callable[[str], str]:
    """Return a function that encrypts text for one purpose (bound in as associated data)."""
    current_id, ring = _current_keyring()
    aead = ring[current_id]
    aad = purpose.encode("utf-8")

    def encrypt(plaintext: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = aead.encrypt(nonce, plaintext.encode("utf-8"), aad)
        return current_id + _SEPARATOR + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    return encrypt


def encrypt_field(plaintext: str, *, purpose: str) -> str:
    """Encrypt text with the current key; the token names the key that made it."""
    return field_encryptor(purpose=purpose)(plaintext)


def decrypt_field(token: str, *, purpose: str) -> str:
    """Decrypt a token made by encrypt_field for the same purpose, with whichever key made it."""
    kid, sep, body = token.partition(_SEPARATOR)
    if not sep:
        raise DecryptionError("Not an encrypted field.")
    _, ring = _current_keyring()
    aead = ring.get(kid)
    if aead is None:
        raise DecryptionError(f"No configured key has id {kid}.")
    try:
        raw = base64.urlsafe_b64decode(body.encode("ascii"))
        return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], purpose.encode("utf-8")).decode(
            "utf-8"
        )
    except (InvalidTag, ValueError, binascii.Error):
        raise DecryptionError(
            "The encrypted field is damaged or was made for another use."
        ) from None


def token_key_id(token: str) -> str:
    """Return the id of the key that made a token (to find values to re-encrypt)."""
    return token.partition(_SEPARATOR)[0]


def current_key_id() -> str:
    return _current_keyring()[0]
