import io
import os

import pytest

from phm_portal.lib import envelope

KEK = os.urandom(32)


def encrypt(data: bytes, ad: bytes = b"dataset:1") -> tuple[envelope.DataKey, bytes]:
    key = envelope.new_data_key(KEK)
    out = io.BytesIO()
    writer = envelope.encrypting_writer(key, out, ad)
    for i in range(0, len(data), 1000):
        writer.write(data[i : i + 1000])
    writer.close()
    return key, out.getvalue()


def test_a_file_round_trips_and_its_key_is_stored_wrapped():
    data = os.urandom(3 * 1024 * 1024 + 17)
    key, ciphertext = encrypt(data)
    assert data[:64] not in ciphertext
    again = envelope.unwrap(KEK, key.wrapped)
    assert b"".join(envelope.iter_plaintext(again, io.BytesIO(ciphertext), b"dataset:1")) == data


@pytest.mark.parametrize("position", [0, 100, 1024 * 1024 + 5, -1])
def test_a_changed_byte_fails(position):
    key, ciphertext = encrypt(os.urandom(2 * 1024 * 1024))
    tampered = bytearray(ciphertext)
    tampered[position] ^= 1
    with pytest.raises(envelope.DecryptionFailed):
        b"".join(envelope.iter_plaintext(key, io.BytesIO(bytes(tampered)), b"dataset:1"))


def test_another_files_context_fails():
    key, ciphertext = encrypt(b"a,b\n1,2\n")
    with pytest.raises(envelope.DecryptionFailed):
        b"".join(envelope.iter_plaintext(key, io.BytesIO(ciphertext), b"dataset:2"))


def test_another_key_encryption_key_cannot_unwrap():
    key, _ = encrypt(b"x")
    with pytest.raises(envelope.DecryptionFailed):
        envelope.unwrap(os.urandom(32), key.wrapped)
