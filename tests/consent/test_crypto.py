import base64

import pytest
from django.core.exceptions import ImproperlyConfigured

from phm_portal.lib import crypto

OTHER_KEY = base64.b64encode(b"k" * 32).decode()


def test_the_blind_index_is_the_same_for_the_same_number_and_differs_between_numbers():
    a = crypto.blind_index("9434765919")
    assert a == crypto.blind_index("9434765919")
    assert a != crypto.blind_index("9990000018")
    assert len(a) == 64 and "9434765919" not in a


def test_the_blind_index_depends_on_the_key(settings):
    before = crypto.blind_index("9434765919")
    settings.PHM_BLIND_INDEX_KEY = OTHER_KEY
    assert crypto.blind_index("9434765919") != before


def test_field_encryption_round_trips_and_hides_the_value():
    token = crypto.encrypt_field("9434765919", purpose="test")
    assert "9434765919" not in token
    assert token.startswith(crypto.current_key_id() + "$")
    assert crypto.decrypt_field(token, purpose="test") == "9434765919"


def test_each_encryption_uses_a_fresh_nonce():
    assert crypto.encrypt_field("9434765919", purpose="test") != crypto.encrypt_field(
        "9434765919", purpose="test"
    )


def test_a_token_made_for_one_purpose_does_not_decrypt_for_another():
    token = crypto.encrypt_field("9434765919", purpose="test")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_field(token, purpose="other")


def test_a_changed_token_is_refused():
    token = crypto.encrypt_field("9434765919", purpose="test")
    kid, _, body = token.partition("$")
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[-1] ^= 1
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_field(
            kid + "$" + base64.urlsafe_b64encode(bytes(raw)).decode(), purpose="test"
        )


def test_after_rotation_the_old_key_still_decrypts_and_new_values_use_the_new_key(settings):
    old_key = settings.PHM_FIELD_ENCRYPTION_KEY
    token = crypto.encrypt_field("9434765919", purpose="test")
    settings.PHM_FIELD_ENCRYPTION_KEY = OTHER_KEY
    settings.PHM_FIELD_ENCRYPTION_OLD_KEYS = [old_key]
    assert crypto.decrypt_field(token, purpose="test") == "9434765919"
    new = crypto.encrypt_field("9434765919", purpose="test")
    assert crypto.token_key_id(new) != crypto.token_key_id(token)
    settings.PHM_FIELD_ENCRYPTION_OLD_KEYS = []
    with pytest.raises(crypto.DecryptionError, match="No configured key"):
        crypto.decrypt_field(token, purpose="test")


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"short").decode()])
def test_a_bad_key_is_named(value):
    with pytest.raises(ImproperlyConfigured, match="PHM_BLIND_INDEX_KEY"):
        crypto.decode_key(value, name="PHM_BLIND_INDEX_KEY")
