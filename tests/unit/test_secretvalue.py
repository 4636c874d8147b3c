"""SecretValue keeps values out of reprs and copies; fingerprints are keyed, stable and comparable."""

from __future__ import annotations

import copy
import pickle
import secrets
import string

import pytest

from openai_operator.secretvalue import (
    FINGERPRINT_PREFIX,
    SecretValue,
    fingerprint,
    fingerprint_matches,
    redact_secret,
)

pytestmark = pytest.mark.unit

_ALPHABET = string.ascii_letters + string.digits


def fake_key(prefix: str = "sk-svcacct-", body_len: int = 156) -> str:
    """A random value with the shape of a real OpenAI key (generated, never a real key)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(body_len))


class TestSecretValue:
    def test_repr_and_str_hide_the_value(self) -> None:
        """Neither repr, str, f-strings nor %-formatting show the value."""
        key = fake_key()
        s = SecretValue(key)
        for text in (repr(s), str(s), f"{s}", f"{s!r}", "%s" % s, format(s, ">300")):  # noqa: UP031
            assert key not in text
            assert key[8:-4] not in text

    def test_reveal_returns_the_value(self) -> None:
        """reveal() is the explicit way out."""
        key = fake_key()
        assert SecretValue(key).reveal() == key

    @pytest.mark.parametrize("prefix", ["sk-proj-", "sk-svcacct-", "sk-admin-"])
    def test_redacted_has_openai_shape(self, prefix: str) -> None:
        """redacted() keeps the first 8 and last 4 characters and the full length, like OpenAI."""
        key = fake_key(prefix)
        red = SecretValue(key).redacted()
        assert len(red) == len(key)
        assert red[:8] == key[:8]
        assert red[-4:] == key[-4:]
        assert set(red[8:-4]) == {"*"}

    def test_redacted_matches_observed_real_shape(self) -> None:
        """A 164-character sk-proj key redacts to 'sk-proj-' + 152 '*' + last 4, as observed."""
        key = fake_key("sk-proj-", 156)
        assert redact_secret(key) == "sk-proj-" + "*" * 152 + key[-4:]

    @pytest.mark.parametrize("value", ["", "short", "sk-admin-1234abcd", "x" * 35])
    def test_short_values_are_fully_masked(self, value: str) -> None:
        """Values too short to be real keys show nothing but their length."""
        assert redact_secret(value) == "*" * len(value)

    def test_equality_and_hash(self) -> None:
        """Equal values compare equal and hash alike; a SecretValue never equals a plain str."""
        key = fake_key()
        assert SecretValue(key) == SecretValue(key)
        assert hash(SecretValue(key)) == hash(SecretValue(key))
        assert SecretValue(key) != SecretValue(key + "x")
        assert SecretValue(key) != key

    def test_immutable(self) -> None:
        """Attributes cannot be set or deleted."""
        s = SecretValue(fake_key())
        with pytest.raises(AttributeError):
            s._value = "other"
        with pytest.raises(AttributeError):
            del s._value

    def test_pickle_is_refused(self) -> None:
        """Pickling would be an accidental copy of the secret."""
        with pytest.raises(TypeError):
            pickle.dumps(SecretValue(fake_key()))

    def test_copy_returns_same_object(self) -> None:
        """copy/deepcopy are harmless and return the same immutable object."""
        s = SecretValue(fake_key())
        assert copy.copy(s) is s
        assert copy.deepcopy({"k": s})["k"] is s

    def test_only_str_is_accepted(self) -> None:
        """Wrapping bytes or None is a bug the constructor reports."""
        with pytest.raises(TypeError):
            SecretValue(b"bytes")  # type: ignore[arg-type]

    def test_len_and_bool(self) -> None:
        """len() and truthiness work without revealing."""
        assert len(SecretValue("abc")) == 3
        assert not SecretValue("")


class TestFingerprint:
    def test_format(self) -> None:
        """A fingerprint is 'hmac-sha256:' followed by 64 hex digits."""
        fp = fingerprint(SecretValue(fake_key()), b"k" * 32)
        assert fp.startswith(FINGERPRINT_PREFIX)
        digest = fp.removeprefix(FINGERPRINT_PREFIX)
        assert len(digest) == 64
        assert set(digest) <= set(string.hexdigits.lower())

    def test_stable_across_input_types(self) -> None:
        """The same value gives the same fingerprint as SecretValue, str or bytes."""
        key, hkey = fake_key(), secrets.token_bytes(32)
        assert fingerprint(SecretValue(key), hkey) == fingerprint(key, hkey) == fingerprint(key.encode(), hkey)

    def test_depends_on_value_and_key(self) -> None:
        """A different value or a different HMAC key changes the fingerprint."""
        key, hkey = fake_key(), secrets.token_bytes(32)
        assert fingerprint(key, hkey) != fingerprint(fake_key(), hkey)
        assert fingerprint(key, hkey) != fingerprint(key, secrets.token_bytes(32))

    def test_does_not_contain_the_value(self) -> None:
        """The fingerprint shows nothing of the value."""
        key = fake_key()
        fp = fingerprint(key, b"k" * 32)
        assert key not in fp
        assert key[:8] not in fp

    def test_matches(self) -> None:
        """fingerprint_matches detects drift (a changed value) and accepts the original."""
        key, hkey = fake_key(), secrets.token_bytes(32)
        fp = fingerprint(key, hkey)
        assert fingerprint_matches(SecretValue(key), fp, hkey)
        assert not fingerprint_matches(fake_key(), fp, hkey)
        assert not fingerprint_matches(key, "hmac-sha256:" + "0" * 64, hkey)

    def test_empty_key_is_refused(self) -> None:
        """An unkeyed fingerprint would be a plain hash of the key; refuse it."""
        with pytest.raises(ValueError, match="key"):
            fingerprint("value", b"")
