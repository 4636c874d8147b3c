"""Fixtures for the emulator conformance suite.

The emulator runs in-process (one fresh instance per test, on a free loopback port) and is driven
by the official ``openai`` SDK. Every HTTP response the SDK receives passes through a recorder that
validates the body against the response schema the official OpenAPI spec declares for that
operation and status (the spec's ``ErrorResponse`` for errors it does not list), and checks the
``x-request-id`` header. A test fails at teardown if any response did not conform.

The spec is found through ``OPENAI_OPENAPI_SPEC`` or at ``../shared/openai/openapi.yaml`` next to
the repository. Without it, tests that validate bodies are skipped with a message saying so; the
tests that only use raw HTTP still run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import openai
import pytest
import yaml
from emulator_support import ClientFactory, Minter, Recorder, SpecChecker, spec_path

from openai_emulator import EmulatorServer, new_admin_key


@pytest.fixture(scope="session")
def spec_checker() -> SpecChecker:
    path = spec_path()
    if not path.exists():
        pytest.skip(
            f"official OpenAPI spec not found at {path}: response bodies cannot be validated. "
            "Set OPENAI_OPENAPI_SPEC to the path of openai/openapi.yaml to run these tests."
        )
    with path.open("rb") as fh:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        spec = yaml.load(fh, Loader=loader)  # noqa: S506 - a safe loader, C-accelerated when available
    return SpecChecker(spec)


@pytest.fixture
def recorder(spec_checker: SpecChecker) -> Iterator[Recorder]:
    rec = Recorder(spec_checker)
    yield rec
    assert not rec.problems, "responses that do not conform to the official spec:\n" + "\n".join(rec.problems)


@pytest.fixture
async def emu() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(admin_key=new_admin_key()) as server:
        yield server


@pytest.fixture
async def sdk(emu: EmulatorServer, recorder: Recorder) -> AsyncIterator[ClientFactory]:
    """Build official SDK clients against the emulator: ``sdk()`` (admin) or ``sdk(api_key=value)``."""
    made: list[openai.AsyncOpenAI] = []

    def make(
        *, api_key: str | None = None, admin_api_key: str | None = None, max_retries: int = 0
    ) -> openai.AsyncOpenAI:
        http_client = openai.DefaultAsyncHttpxClient(event_hooks={"response": [recorder.hook]})
        client = openai.AsyncOpenAI(
            api_key=api_key or "not-used-by-admin-calls",
            admin_api_key=admin_api_key if admin_api_key is not None else emu.admin_key,
            base_url=emu.base_url,
            max_retries=max_retries,
            http_client=http_client,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest.fixture
def admin(sdk: ClientFactory) -> openai.AsyncOpenAI:
    return sdk()


@pytest.fixture
async def control(emu: EmulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client on the emulator root, for ``/_emulator`` calls and raw requests."""
    async with httpx.AsyncClient(base_url=emu.root_url, timeout=10) as client:
        yield client


@pytest.fixture
async def raw(emu: EmulatorServer, recorder: Recorder) -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client on ``/v1`` with the admin key; its responses are checked like the SDK's."""
    headers = {"Authorization": f"Bearer {emu.admin_key}"}
    hooks = {"response": [recorder.hook]}
    async with httpx.AsyncClient(base_url=emu.base_url, headers=headers, timeout=10, event_hooks=hooks) as client:
        yield client


@pytest.fixture
def mint(admin: openai.AsyncOpenAI) -> Minter:
    """``await mint()`` → (project id, service account id, key value) through the Admin API."""

    async def make(project_id: str | None = None, name: str = "k8s.default.app.r1") -> tuple[str, str, str]:
        orgp = admin.admin.organization.projects
        if project_id is None:
            project_id = (await orgp.create(name="minted")).id
        sa = await orgp.service_accounts.create(project_id=project_id, name=name)
        assert sa.api_key is not None
        return project_id, sa.id, sa.api_key.value

    return make
