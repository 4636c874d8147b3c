"""Projects through the official SDK: create, list (paging, include_archived), retrieve, modify,
archive, and the refusals (archived or default project, unknown ids)."""

from __future__ import annotations

import openai
import pytest
from emulator_support import Recorder

pytestmark = pytest.mark.conformance


async def test_create_retrieve_modify_archive(admin: openai.AsyncOpenAI, recorder: Recorder) -> None:
    projects = admin.admin.organization.projects
    created = await projects.create(name="team-a", external_key_id=None)
    assert created.name == "team-a"
    assert created.status == "active"
    assert created.archived_at is None
    assert (await projects.retrieve(created.id)).id == created.id
    renamed = await projects.update(created.id, name="team-a2")
    assert renamed.name == "team-a2"
    archived = await projects.archive(created.id)
    assert archived.status == "archived"
    assert archived.archived_at is not None
    with pytest.raises(openai.BadRequestError):
        await projects.update(created.id, name="again")
    with pytest.raises(openai.BadRequestError):
        await projects.service_accounts.create(project_id=created.id, name="sa")
    assert ("POST", "/organization/projects", 200) in recorder.operations()


async def test_list_pages_with_after_and_hides_archived(admin: openai.AsyncOpenAI, recorder: Recorder) -> None:
    projects = admin.admin.organization.projects
    ids = [(await projects.create(name=f"p{i}")).id for i in range(7)]
    await projects.archive(ids[0])
    first = await projects.list(limit=3)
    assert len(first.data) == 3
    assert first.has_more
    listed = [p.id async for p in projects.list(limit=3)]
    assert ids[0] not in listed
    assert set(ids[1:]) <= set(listed)
    assert len(listed) == len(set(listed)), "paging must not repeat items"
    with_archived = [p.id async for p in projects.list(limit=2, include_archived=True)]
    assert ids[0] in with_archived
    pages = [s for s in recorder.seen if s.template == "/organization/projects" and s.method == "GET"]
    assert len(pages) >= 3, "auto-paging must have followed last_id"


async def test_default_project_refuses_modify_and_archive(admin: openai.AsyncOpenAI) -> None:
    projects = admin.admin.organization.projects
    named = {p.name: p async for p in projects.list()}
    default = named["Default project"]
    with pytest.raises(openai.BadRequestError):
        await projects.update(default.id, name="x")
    with pytest.raises(openai.BadRequestError):
        await projects.archive(default.id)


async def test_unknown_project_is_404(admin: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        await admin.admin.organization.projects.retrieve("proj_doesnotexist")
    assert info.value.response.json()["error"]["param"] == "project_id"


async def test_residency_and_geography(admin: openai.AsyncOpenAI) -> None:
    projects = admin.admin.organization.projects
    eu = await projects.create(name="eu", residency="EU_STORAGE_PROCESSING")
    assert eu.residency == "EU_STORAGE_PROCESSING"
    with pytest.raises(openai.BadRequestError):
        await projects.create(name="both", residency="GLOBAL", geography="US")
