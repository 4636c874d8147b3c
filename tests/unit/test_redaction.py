"""The one redactor (openai_operator.redaction.redact) hides key material and leaves identifiers alone;
the log processor, errors.scrub and the Event path all use it.

Keys are generated at runtime in the real shapes (prefix + random body); none is hard-coded.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import secrets
import string
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from openai_emulator.keys import mint_secret, new_id
from openai_operator import errors, redaction
from openai_operator import logging as oplogging
from openai_operator.logging import (
    configure_logging,
    is_secret_field,
    redact_value,
    redaction_processor,
)
from openai_operator.redaction import REDACTED, forget_secrets, redact, register_secret
from openai_operator.secretvalue import SecretValue

pytestmark = pytest.mark.unit

_ALNUM = string.ascii_letters + string.digits


def rand(n: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def fake_key(prefix: str, body_len: int = 156) -> str:
    """A random value in the shape of an OpenAI key; guaranteed mixed case and digits."""
    return prefix + "aZ9" + rand(body_len - 3, _ALNUM + "_-")


KEY_PREFIXES = ["sk-proj-", "sk-svcacct-", "sk-admin-", "sk-None-", "sk-"]


def process(event: dict[str, Any]) -> dict[str, Any]:
    return dict(redaction_processor(None, "info", event))


def leaked(secret: str, rendered: str) -> bool:
    """True if the secret or a long piece of it appears in ``rendered``."""
    pieces = [secret] + ([secret[12:28], secret[-20:-4]] if len(secret) >= 40 else [])
    return any(p in rendered for p in pieces)


class TestRedactText:
    @pytest.mark.parametrize("prefix", KEY_PREFIXES)
    def test_openai_keys_of_every_shape(self, prefix: str) -> None:
        """Each key shape is replaced and its prefix kept for the reader."""
        key = fake_key(prefix)
        out = redact(f"issued {key} for team-a")
        assert not leaked(key, out)
        assert out == f"issued {prefix}{REDACTED} for team-a"

    @pytest.mark.parametrize("body_len", [8, 20, 48, 156])
    def test_key_lengths(self, body_len: int) -> None:
        """Short (emulator, spec-example) and long keys are both caught."""
        key = fake_key("sk-admin-", body_len)
        assert key not in redact(key)

    def test_bearer_header(self) -> None:
        """An Authorization header value is hidden whatever the token looks like."""
        token = rand(24, string.ascii_lowercase)
        out = redact(f"Authorization: Bearer {token}")
        assert token not in out
        assert out == f"Authorization: Bearer {REDACTED}"

    def test_bearer_with_openai_key(self) -> None:
        """A bearer OpenAI key is redacted once, not mangled."""
        key = fake_key("sk-admin-")
        assert redact(f"bearer {key}") == f"bearer {REDACTED}"

    def test_basic_auth(self) -> None:
        """Basic credentials are hidden too."""
        cred = base64.b64encode(b"user:pw").decode()
        assert cred not in redact(f"Authorization: Basic {cred}")

    def test_jwt(self) -> None:
        """A Kubernetes service-account token (JWT) is hidden."""
        header = base64.urlsafe_b64encode(b'{"alg":"RS256","kid":"x"}').decode().rstrip("=")
        jwt = f"{header}.{rand(60)}.{rand(40)}"
        assert jwt not in redact(f"token {jwt} used")

    @pytest.mark.parametrize("prefix", ["hvs.", "s."])
    def test_vault_tokens(self, prefix: str) -> None:
        """Vault/OpenBao tokens are hidden."""
        token = prefix + rand(24)
        assert token not in redact(f"vault login with {token}")

    @pytest.mark.parametrize("name", ["api_key", "token", "password", "client_secret", "access_token"])
    def test_assignments(self, name: str) -> None:
        """name=value and name: value pairs inside text lose their value."""
        value = rand(12, string.ascii_lowercase)
        assert value not in redact(f"GET /x?{name}={value}&a=1")
        assert value not in redact(f'{{"{name}": "{value}"}}')

    def test_base64_of_a_key(self) -> None:
        """A key base64-encoded (as in a Secret's data) is hidden."""
        encoded = base64.b64encode(fake_key("sk-proj-").encode()).decode()
        assert encoded not in redact(f"data: {encoded}")
        assert encoded[10:40] not in redact(f"data: {encoded}")

    def test_partial_key_in_api_error(self) -> None:
        """OpenAI's 'Incorrect API key provided' message loses the key it echoes."""
        key = fake_key("sk-proj-")
        msg = f"Incorrect API key provided: {key}. You can find your API key at https://platform.openai.com."
        assert not leaked(key, redact(msg))
        assert "Incorrect API key provided" in redact(msg)

    @pytest.mark.parametrize(
        "text",
        [
            "key_abc",
            "svc_acct_abc123",
            "proj_7Qx",
            "k8s.team-a.app.r3",
            "/organization/projects/proj_7QxAbcDEF12345678/service_accounts/svc_acct_AbC123xyz",
            "sk-proj-" + "*" * 152 + "excA",
            "sk-abc...def",
            "hmac-sha256:" + "ab12" * 16,
            "max_tokens: 100, tokens: 3",
            "0d4d3b8e-8d4f-4c8e-9f3a-2b1c0e9d8f7a",
            "scikit-learn and some-long-hyphenated-kubernetes-resource-name-here",
            "page_AAAAAGdGxdEiJdKOAAAAAGcqsYA=",
            "basic checks passed; bearer of bad news",
            "k8s.a1b2c3d4.team-a.app.r3",
            "k8s.a1b2c3d4.team-a.0123456789abcdef0123456789abcdef.r12",
        ],
    )
    def test_safe_text_is_untouched(self, text: str) -> None:
        """Ids, names, paths, redacted values, digests and UIDs pass through unchanged."""
        assert redact(text) == text

    @pytest.mark.parametrize(
        "prefix", ["svc_acct_", "key_", "proj_", "user-", "org-", "user_", "page_", "call_"]
    )
    @pytest.mark.parametrize("length", [8, 24, 32, 48])
    def test_ids_of_any_length_survive(self, prefix: str, length: int) -> None:
        """OpenAI ids stay readable however long and random-looking their body is (an Event message
        used to read "service account [REDACTED]")."""
        ident = new_id(prefix, length)
        message = f"revoked service account {ident} (key key_{rand(24)}) of project proj_{rand(24)}"
        assert redact(message) == message

    def test_event_message_keeps_ids_and_loses_the_key(self) -> None:
        """The Event shape: ids and names verbatim, only the key material replaced."""
        key = mint_secret("sk-svcacct-")
        sa, key_id = new_id("svc_acct_"), new_id("key_")
        message = f"issued service account {sa} (k8s.a1b2c3d4.team-a.chat.r2), key {key_id}: {key}"
        assert redact(message) == (
            f"issued service account {sa} (k8s.a1b2c3d4.team-a.chat.r2), key {key_id}: sk-svcacct-{REDACTED}"
        )

    def test_idempotent(self) -> None:
        """Redacting twice changes nothing more."""
        text = f"Bearer {fake_key('sk-admin-')} and {fake_key('sk-proj-')} token=abcdefgh"
        assert redact(redact(text)) == redact(text)


class TestRegisteredSecrets:
    @pytest.fixture(autouse=True)
    def _clean(self) -> Iterator[None]:
        forget_secrets()
        yield
        forget_secrets()

    def test_registered_value_is_redacted_whatever_its_shape(self) -> None:
        """The admin key (or a Vault token, or the fingerprint key) is hidden even in an unknown format."""
        admin = "adm1n" + rand(30, string.ascii_lowercase)
        assert redact(f"called with {admin}!") == f"called with {admin}!"
        register_secret(admin)
        assert redact(f"called with {admin}!") == f"called with {REDACTED}!"

    def test_bytes_and_short_values(self) -> None:
        """Bytes are registered as text; values under 8 characters are ignored (they would eat words)."""
        register_secret(b"fingerprint-key-0123456789")
        register_secret("team")
        register_secret(None)
        assert redact("fingerprint-key-0123456789 for team") == f"{REDACTED} for team"

    def test_registered_values_reach_the_log_processor(self) -> None:
        """The processor uses the same function, so a registered value is gone from log lines too."""
        admin = rand(40, string.ascii_lowercase)
        register_secret(admin)
        assert process({"event": f"x {admin}", "note": [admin]}) == {"event": f"x {REDACTED}", "note": [REDACTED]}


class TestOneRedactor:
    def test_every_entry_point_is_the_same_function(self) -> None:
        """errors.scrub and logging.redact are the redaction module's redact, not copies."""
        assert errors.scrub is redaction.redact
        assert oplogging.redact is redaction.redact

    def test_error_messages_use_it(self) -> None:
        """An OperatorError message keeps the ids and loses the key material."""
        sa, key = new_id("svc_acct_"), mint_secret("sk-proj-")
        error = errors.PermanentError(f"verify of {sa} failed with Bearer {key}")
        assert error.message == f"verify of {sa} failed with Bearer {REDACTED}"

    @pytest.mark.parametrize(
        "text",
        [
            f"created {mint_secret('sk-proj-')} for {new_id('svc_acct_')}",
            f"Authorization: Bearer {rand(30)}",
            f"service account {new_id('svc_acct_')} in {new_id('proj_')}",
            "token=" + rand(20),
        ],
    )
    def test_log_processor_gives_the_same_text(self, text: str) -> None:
        """A string field of a log event comes out exactly as redact() makes it."""
        assert process({"event": text, "note": text}) == {"event": redact(text), "note": redact(text)}


class TestSecretFieldNames:
    @pytest.mark.parametrize(
        "name",
        [
            "api_key",
            "apiKey",
            "admin_key",
            "key",
            "OPENAI_API_KEY",
            "token",
            "vault_token",
            "secret",
            "client-secret",
            "authorization",
            "Authorization",
            "password",
            "value",
            "credentials",
            "cookie",
        ],
    )
    def test_secret_names(self, name: str) -> None:
        """Names that look like secrets are recognised, in any case and separator style."""
        assert is_secret_field(name)

    @pytest.mark.parametrize(
        "name",
        [
            "key_id",
            "keyId",
            "api_key_id",
            "apiKeyId",
            "api_key_ids",
            "previous_key_id",
            "redacted_value",
            "redactedKey",
            "secret_name",
            "secretName",
            "service_account_id",
            "project_id",
            "request_id",
            "fingerprint",
            "event",
            "keys",
        ],
    )
    def test_safe_names(self, name: str) -> None:
        """Identifier fields are not treated as secrets."""
        assert not is_secret_field(name)


class TestProcessor:
    def test_top_level_values_and_event(self) -> None:
        """Keys in the event text and in any field are hidden; safe fields are kept."""
        key = fake_key("sk-svcacct-")
        event = process(
            {
                "event": f"created {key}",
                "note": f"value was {key}",
                "key_id": "key_abc",
                "service_account_id": "svc_acct_abc",
                "redacted_value": "sk-svcac" + "*" * 20 + "380A",
            }
        )
        rendered = json.dumps(event)
        assert not leaked(key, rendered)
        assert event["key_id"] == "key_abc"
        assert event["service_account_id"] == "svc_acct_abc"
        assert event["redacted_value"] == "sk-svcac" + "*" * 20 + "380A"

    def test_secret_named_fields_are_replaced_whole(self) -> None:
        """A field named like a secret is replaced even if its value does not look like one."""
        event = process({"event": "x", "api_key": "plain", "token": {"a": 1}, "password": ["p"], "value": b"raw"})
        assert event["api_key"] == event["token"] == event["password"] == event["value"] == REDACTED

    def test_numbers_under_secret_names_are_kept(self) -> None:
        """Counts and limits (max_tokens_per_1_minute, keys=3) are not secrets."""
        event = process({"event": "x", "max_tokens_per_1_minute": 1000, "keys": 3, "has_token": True})
        assert event == {"event": "x", "max_tokens_per_1_minute": 1000, "keys": 3, "has_token": True}

    def test_nested_structures(self) -> None:
        """Dicts, lists and tuples at any depth are searched, by name and by shape."""
        key1, key2, key3 = fake_key("sk-proj-"), fake_key("sk-admin-"), fake_key("sk-")
        event = process(
            {
                "event": "nested",
                "response": {
                    "data": [{"id": "key_1", "api_key": {"value": key1, "id": "key_2"}}],
                    "items": ({"note": key2}, [f"x {key3}"]),
                    "owner": {"service_account": {"id": "svc_acct_1"}},
                },
            }
        )
        rendered = json.dumps(event)
        for k in (key1, key2, key3):
            assert not leaked(k, rendered)
        assert event["response"]["data"][0]["id"] == "key_1"
        assert event["response"]["owner"] == {"service_account": {"id": "svc_acct_1"}}

    def test_exception_objects_and_text(self) -> None:
        """Exceptions as values and rendered tracebacks lose the keys in their text."""
        key = fake_key("sk-proj-")
        event = process({"event": "failed", "error": RuntimeError(f"bad {key}"), "exception": f"Traceback\n{key}"})
        assert event["error"] == f"RuntimeError: bad sk-proj-{REDACTED}"
        assert not leaked(key, event["exception"])

    def test_secretvalue_and_unknown_objects(self) -> None:
        """SecretValue renders redacted; other objects are repr'd and then redacted."""
        key = fake_key("sk-svcacct-")

        class Holder:
            def __repr__(self) -> str:
                return f"Holder({key})"

        event = process({"event": "x", "sv": SecretValue(key), "obj": Holder()})
        assert not leaked(key, json.dumps(event))

    def test_deep_nesting_is_bounded(self) -> None:
        """Pathologically deep structures are cut off rather than recursed without end."""
        key = fake_key("sk-")
        deep: Any = key
        for _ in range(50):
            deep = [deep]
        assert key not in json.dumps(process({"event": "x", "deep": deep}))

    def test_exc_info_is_left_for_the_renderer(self) -> None:
        """exc_info stays as is; the renderer (format_exc_info or console formatter) handles it."""
        exc_info = (ValueError, ValueError("x"), None)
        assert process({"event": "x", "exc_info": exc_info})["exc_info"] is exc_info

    def test_redact_value_on_plain_containers(self) -> None:
        """redact_value is usable on its own, e.g. for Event annotations."""
        key = fake_key("sk-proj-")
        assert redact_value({"a": [key], "key_id": "key_1"}) == {
            "a": [f"sk-proj-{REDACTED}"],
            "key_id": "key_1",
        }


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Configure the real pipeline into a buffer, and restore logging afterwards."""
    stream = io.StringIO()
    root = logging.getLogger()
    old_handlers, old_level = list(root.handlers), root.level
    handler = configure_logging("json", stream=stream, level=logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        for h in old_handlers:
            if h not in root.handlers:
                root.addHandler(h)
        root.setLevel(old_level)
        structlog.reset_defaults()


@pytest.fixture
def console_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    old_level = root.level
    handler = configure_logging("console", stream=stream, level=logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        structlog.reset_defaults()


class TestConfiguredPipeline:
    def test_structlog_lines_are_json_and_redacted(self, log_stream: io.StringIO) -> None:
        """Our own structlog events render as one JSON object per line, redacted."""
        key = fake_key("sk-proj-")
        structlog.get_logger("openai_operator.test").info("issued", key_id="key_1", api_key=key, note=key)
        line = json.loads(log_stream.getvalue().strip().splitlines()[-1])
        assert line["event"] == "issued"
        assert line["key_id"] == "key_1"
        assert line["api_key"] == REDACTED
        assert line["level"] == "info"
        assert line["logger"] == "openai_operator.test"
        assert "timestamp" in line
        assert not leaked(key, log_stream.getvalue())

    def test_stdlib_records_go_through_the_same_pipeline(self, log_stream: io.StringIO) -> None:
        """Kopf and httpx log through stdlib; their records are JSON and redacted as well."""
        key = fake_key("sk-admin-")
        logging.getLogger("kopf.objects").warning("Handler failed with %s", f"Bearer {key}")
        line = json.loads(log_stream.getvalue().strip().splitlines()[-1])
        assert line["logger"] == "kopf.objects"
        assert line["level"] == "warning"
        assert line["event"] == f"Handler failed with Bearer {REDACTED}"

    def test_stdlib_extra_fields_are_redacted(self, log_stream: io.StringIO) -> None:
        """extra= fields on stdlib records are included and redacted by name."""
        logging.getLogger("kopf").info("hello", extra={"token": "abc", "colour": "blue"})
        line = json.loads(log_stream.getvalue().strip().splitlines()[-1])
        assert line["token"] == REDACTED
        assert line["colour"] == "blue"

    def test_kopf_object_fields_are_compacted(self, log_stream: io.StringIO) -> None:
        """Kopf's per-object extras become one ``object`` field; its settings dump is dropped."""
        ref = {"apiVersion": "openai.operator.dev/v1alpha1", "kind": "OpenAIKey", "name": "chat", "namespace": "apps"}
        logging.getLogger("kopf.objects").info("done", extra={"k8s_ref": ref, "k8s_skip": False, "settings": object()})
        line = json.loads(log_stream.getvalue().strip().splitlines()[-1])
        assert line["object"] == "OpenAIKey apps/chat"
        assert not {"k8s_ref", "k8s_skip", "settings"} & set(line)

    def test_tracebacks_are_redacted(self, log_stream: io.StringIO) -> None:
        """A logged exception's traceback text loses the key in its message."""
        key = fake_key("sk-svcacct-")
        try:
            raise RuntimeError(f"boom {key}")
        except RuntimeError:
            logging.getLogger("kopf").exception("failed")
            structlog.get_logger("openai_operator").exception("failed too")
        out = log_stream.getvalue()
        assert "RuntimeError" in out
        assert not leaked(key, out)

    def test_httpx_is_quieted(self, log_stream: io.StringIO) -> None:
        """httpx INFO request lines are suppressed (the client logs its own, templated lines)."""
        logging.getLogger("httpx").info("HTTP Request: GET https://example/x")
        assert "HTTP Request" not in log_stream.getvalue()

    def test_console_renderer_redacts_fields_and_tracebacks(self, console_stream: io.StringIO) -> None:
        """The console format is redacted too, including its own exception rendering."""
        key = fake_key("sk-proj-")
        try:
            raise ValueError(f"bad {key}")
        except ValueError:
            structlog.get_logger("openai_operator").exception("oops", note=key)
        out = console_stream.getvalue()
        assert "oops" in out
        assert "ValueError" in out
        assert not leaked(key, out)

    def test_exclusive_removes_foreign_handlers(self) -> None:
        """exclusive=True leaves only our handler on the root logger (e.g. drops Kopf's own)."""
        root = logging.getLogger()
        saved, level = list(root.handlers), root.level
        foreign = logging.StreamHandler(io.StringIO())
        root.addHandler(foreign)
        try:
            handler = configure_logging("json", stream=io.StringIO(), exclusive=True)
            assert root.handlers == [handler]
        finally:
            root.handlers[:] = saved
            root.setLevel(level)
            structlog.reset_defaults()

    def test_reconfiguring_replaces_the_handler(self, log_stream: io.StringIO) -> None:
        """A second configure_logging call does not duplicate lines."""
        stream2 = io.StringIO()
        handler = configure_logging("json", stream=stream2, level=logging.INFO)
        try:
            structlog.get_logger("x").info("once")
            assert stream2.getvalue().count('"once"') == 1
            assert '"once"' not in log_stream.getvalue()
        finally:
            logging.getLogger().removeHandler(handler)
