"""Operator settings: the fingerprint key (file or env, required, never shown), the instance id, the
global rotation floor and verification attempts, parsed by ``openai-operator run`` from flags and env."""

from __future__ import annotations

import secrets
import sys
import types
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import openai_operator.logging as oplogging
from openai_operator.cli import main
from openai_operator.config import (
    FINGERPRINT_KEY_ENV,
    ConfigError,
    OperatorConfig,
    load_fingerprint_key,
    validate_instance_id,
)
from openai_operator.redaction import REDACTED, forget_secrets, redact
from openai_operator.secretvalue import SecretValue

pytestmark = pytest.mark.unit

ADMIN = "sk-admin-" + "x" * 40


def random_key() -> str:
    return secrets.token_urlsafe(48)


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    forget_secrets()
    yield
    forget_secrets()


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What ``run`` would hand to the operator (run_operator and logging setup replaced).

    ``handlers.lifecycle`` is replaced by a stand-in module, so Kopf is never imported here (importing
    it installs Kopf's own handlers on its loggers, which other unit tests would then trip over).
    """
    calls: list[Any] = []
    fake = types.ModuleType("openai_operator.handlers.lifecycle")
    fake.RunOptions = lambda **options: options  # type: ignore[attr-defined]
    fake.run_operator = lambda config, options: calls.append((config, options))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "openai_operator.handlers.lifecycle", fake)
    monkeypatch.setattr(oplogging, "configure_logging", lambda *a, **k: None)
    return calls


def invoke(args: list[str], env: dict[str, str | None]) -> Result:
    base: dict[str, str | None] = {
        "OPENAI_ADMIN_KEY": ADMIN, FINGERPRINT_KEY_ENV: None, "OPENAI_OPERATOR_FINGERPRINT_KEY_FILE": None,
        "OPENAI_OPERATOR_INSTANCE_ID": None, "OPENAI_OPERATOR_MIN_ROTATION_INTERVAL": None,
        "OPENAI_OPERATOR_VERIFY_ATTEMPTS": None, "VAULT_TOKEN": None,
    }
    return CliRunner().invoke(main, ["run", *args], env={**base, **env})


def config_of(started: list[Any]) -> OperatorConfig:
    assert len(started) == 1
    config: OperatorConfig = started[0][0]
    return config


class TestFingerprintKey:
    def test_from_a_file(self, tmp_path: Path) -> None:
        """The file's content, trailing newline stripped (as a mounted Secret has it or not)."""
        key = random_key()
        (tmp_path / "fp").write_text(key + "\n")
        assert load_fingerprint_key(tmp_path / "fp", None) == key.encode()

    def test_from_the_environment(self) -> None:
        key = random_key()
        assert load_fingerprint_key(None, SecretValue(key)) == key.encode()

    def test_the_file_wins(self, tmp_path: Path) -> None:
        key = random_key()
        (tmp_path / "fp").write_text(key)
        assert load_fingerprint_key(tmp_path / "fp", SecretValue(random_key())) == key.encode()

    @pytest.mark.parametrize("env_value", [None, SecretValue(""), SecretValue("  \n")])
    def test_none_at_all_is_refused_with_a_clear_error(self, env_value: SecretValue | None) -> None:
        """No fallback constant: without a key the message says which settings give one."""
        with pytest.raises(ConfigError, match=r"--fingerprint-key-file .*OPENAI_OPERATOR_FINGERPRINT_KEY"):
            load_fingerprint_key(None, env_value)

    def test_short_keys_are_refused_without_showing_them(self) -> None:
        short = "s3cr3t-but-short"
        with pytest.raises(ConfigError, match="16 bytes; it needs at least 32") as caught:
            load_fingerprint_key(None, SecretValue(short))
        assert short not in str(caught.value)

    def test_unreadable_file(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"cannot read the fingerprint key file .*FileNotFoundError"):
            load_fingerprint_key(tmp_path / "missing", None)

    def test_config_has_no_default_key(self) -> None:
        """OperatorConfig itself refuses to exist without a key (the public constant is gone)."""
        with pytest.raises(ConfigError, match="fingerprint_key must be set"):
            OperatorConfig(admin_key=SecretValue(ADMIN))

    def test_not_in_repr(self) -> None:
        key = random_key()
        config = OperatorConfig(admin_key=SecretValue(ADMIN), fingerprint_key=key.encode())
        assert key not in repr(config)


class TestInstanceId:
    @pytest.mark.parametrize("value", ["a", "prod1", "0123456789ab"])
    def test_valid(self, value: str) -> None:
        assert validate_instance_id(value) == value

    @pytest.mark.parametrize("value", ["", "Prod", "prod-1", "prod.1", "0123456789abc", "ü"])
    def test_invalid(self, value: str) -> None:
        with pytest.raises(ConfigError, match=r"\[a-z0-9\]\{1,12\}"):
            validate_instance_id(value)
        with pytest.raises(ConfigError):
            OperatorConfig(admin_key=SecretValue(ADMIN), fingerprint_key=b"k" * 32, instance_id=value)


class TestRunFlags:
    def test_defaults(self, started: list[Any]) -> None:
        result = invoke([], {FINGERPRINT_KEY_ENV: random_key()})
        assert result.exit_code == 0, result.output
        config = config_of(started)
        assert (config.instance_id, config.min_rotation_interval, config.verify_attempts) == (
            None, timedelta(minutes=5), 3)

    def test_flags(self, started: list[Any], tmp_path: Path) -> None:
        key = random_key()
        (tmp_path / "fp").write_text(key)
        result = invoke(
            ["--fingerprint-key-file", str(tmp_path / "fp"), "--instance-id", "prod1",
             "--min-rotation-interval", "90s", "--verify-attempts", "5"],
            {},
        )
        assert result.exit_code == 0, result.output
        config = config_of(started)
        assert config.fingerprint_key == key.encode()
        assert (config.instance_id, config.min_rotation_interval, config.verify_attempts) == (
            "prod1", timedelta(seconds=90), 5)

    def test_environment(self, started: list[Any], tmp_path: Path) -> None:
        key = random_key()
        (tmp_path / "fp").write_text(key)
        result = invoke([], {
            "OPENAI_OPERATOR_FINGERPRINT_KEY_FILE": str(tmp_path / "fp"), "OPENAI_OPERATOR_INSTANCE_ID": "c2",
            "OPENAI_OPERATOR_MIN_ROTATION_INTERVAL": "0s", "OPENAI_OPERATOR_VERIFY_ATTEMPTS": "1",
        })
        assert result.exit_code == 0, result.output
        config = config_of(started)
        assert config.fingerprint_key == key.encode()
        assert (config.instance_id, config.min_rotation_interval, config.verify_attempts) == (
            "c2", timedelta(0), 1)

    def test_empty_instance_id_means_derive(self, started: list[Any]) -> None:
        assert invoke([], {FINGERPRINT_KEY_ENV: random_key(), "OPENAI_OPERATOR_INSTANCE_ID": ""}).exit_code == 0
        assert config_of(started).instance_id is None

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--instance-id", "Prod-1"], "[a-z0-9]{1,12}"),
            (["--min-rotation-interval", "often"], "is not a duration"),
            (["--verify-attempts", "0"], "0 is not in the range x>=1"),
        ],
    )
    def test_bad_values_are_refused(self, started: list[Any], args: list[str], message: str) -> None:
        result = invoke(args, {FINGERPRINT_KEY_ENV: random_key()})
        assert result.exit_code == 2
        assert message in result.output
        assert not started

    def test_refuses_to_start_without_a_fingerprint_key(self, started: list[Any]) -> None:
        result = invoke([], {})
        assert result.exit_code == 1
        assert "no fingerprint key: set --fingerprint-key-file" in result.output
        assert not started

    def test_the_started_with_credentials_are_registered_with_the_redactor(self, started: list[Any]) -> None:
        """Admin key, Vault token and fingerprint key are redacted wherever they would show up."""
        fp_key, vault_token = random_key(), "root-token-" + secrets.token_hex(8)
        admin = "adm-" + secrets.token_hex(20)  # not sk- shaped: only the registration catches it
        result = invoke([], {FINGERPRINT_KEY_ENV: fp_key, "VAULT_TOKEN": vault_token, "OPENAI_ADMIN_KEY": admin})
        assert result.exit_code == 0, result.output
        assert redact(f"{admin} {vault_token} {fp_key}") == f"{REDACTED} {REDACTED} {REDACTED}"

    def test_help_lists_the_new_settings(self) -> None:
        out = CliRunner().invoke(main, ["run", "--help"]).output
        for flag in ("--fingerprint-key-file", "--instance-id", "--min-rotation-interval", "--verify-attempts"):
            assert flag in out
