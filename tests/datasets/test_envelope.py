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


def test_writes_of_every_size_and_kind_arrive_whole_and_in_order():
    """Small writes are buffered, large bytes go to Tink as they are: in the order written."""
    pieces = [
        b"head,",
        os.urandom(3 * 1024 * 1024),  # large bytes: handed over whole
        bytearray(os.urandom(100)),
        memoryview(os.urandom(70_000)),
        b"x" * 9000,
        b"",
        os.urandom(10),
    ]
    key = envelope.new_data_key(KEK)
    out = io.BytesIO()
    writer = envelope.encrypting_writer(key, out, b"dataset:1")
    assert [writer.write(p) for p in pieces] == [len(p) for p in pieces]
    writer.close()
    writer.close()  # closing twice is harmless
    plain = b"".join(envelope.iter_plaintext(key, io.BytesIO(out.getvalue()), b"dataset:1"))
    assert plain == b"".join(bytes(p) for p in pieces)


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


def segmented(data: bytes, segment_bytes: int) -> tuple[envelope.DataKey, bytes, list]:
    key = envelope.new_data_key(KEK)
    out = io.BytesIO()
    writer = envelope.SegmentedWriter(key, out, b"dataset:1", segment_bytes)
    for i in range(0, len(data), 777):
        writer.write(data[i : i + 777])
    writer.close()
    return key, out.getvalue(), writer.segments


def test_a_segmented_file_reads_from_any_segment_without_the_ones_before():
    data = os.urandom(10_000)
    key, ciphertext, segments = segmented(data, 1000)
    assert len(segments) == 10 and data[:64] not in ciphertext
    for first in (0, 3, 9):
        reader = envelope.segmented_reader(
            key, io.BytesIO(ciphertext), b"dataset:1", segments, first
        )
        assert reader.read() == data[first * 1000 :]


@pytest.mark.parametrize("size", [1, 999, 1000, 1001, 4096])
def test_an_unbuffered_segmented_reader_gives_everything_in_order_never_more_than_asked(size):
    data = os.urandom(10_000)
    key, ciphertext, segments = segmented(data, 1000)
    reader = envelope.segmented_reader(
        key, io.BytesIO(ciphertext), b"dataset:1", segments, 2, buffered=False
    )
    pieces = list(iter(lambda: reader.read(size), b""))
    assert all(0 < len(p) <= size for p in pieces)
    assert b"".join(pieces) == data[2000:]
    again = envelope.segmented_reader(
        key, io.BytesIO(ciphertext), b"dataset:1", segments, 9, buffered=False
    )
    assert again.read() == data[9000:]


def test_segments_swapped_or_cut_away_fail():
    key, ciphertext, segments = segmented(os.urandom(3000), 1000)
    swapped = [segments[1], segments[0], segments[2]]
    with pytest.raises(envelope.DecryptionFailed):
        envelope.segmented_reader(key, io.BytesIO(ciphertext), b"dataset:1", swapped).read()
    offset, length = segments[2]
    cut = [*segments[:2], (offset, length - 20)]
    with pytest.raises(envelope.DecryptionFailed):
        envelope.segmented_reader(key, io.BytesIO(ciphertext), b"dataset:1", cut).read()
    tampered = bytearray(ciphertext)
    tampered[segments[1][0] + 50] ^= 1
    with pytest.raises(envelope.DecryptionFailed):
        envelope.segmented_reader(
            key, io.BytesIO(bytes(tampered)), b"dataset:1", segments, 1
        ).read()
