"""The control API (state dump, call counts, clock, reset, config), persistence, and the CLI."""

from __future__ import annotations

import os
import queue
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest
from emulator_support import Minter

from openai_emulator import EmulatorServer, new_admin_key
from openai_emulator.clock import DAY, day_start, next_month_start

pytestmark = pytest.mark.conformance
SA_ROUTE = "/v1/organization/projects/{project_id}/service_accounts"


async def test_state_dump_counts_live_objects_and_calls(
    admin: openai.AsyncOpenAI, mint: Minter, control: httpx.AsyncClient, emu: EmulatorServer
) -> None:
    pid, sa_id, value = await mint()
    await mint(pid, name="second")
    await admin.admin.organization.projects.service_accounts.delete(sa_id, project_id=pid)
    with pytest.raises(openai.NotFoundError):
        await admin.admin.organization.projects.service_accounts.delete(sa_id, project_id=pid)
    r = await control.get("/_emulator/state")
    assert value not in r.text, "the dump must not contain key values"
    assert emu.admin_key not in r.text
    dump = r.json()
    project = next(p for p in dump["projects"] if p["id"] == pid)
    assert project["live_service_accounts"] == 1
    assert project["live_api_keys"] == 1
    assert project["service_accounts"][0]["api_keys"][0]["redacted_value"].startswith("sk-svcac****")
    calls = {(c["method"], c["route"], c["status"]): c["count"] for c in dump["calls"]}
    assert calls[("POST", SA_ROUTE, 200)] == 2
    assert calls[("DELETE", SA_ROUTE + "/{service_account_id}", 200)] == 1
    assert calls[("DELETE", SA_ROUTE + "/{service_account_id}", 404)] == 1
    filtered = (await control.get("/_emulator/calls", params={"method": "POST", "route": SA_ROUTE})).json()
    assert [c["count"] for c in filtered["calls"]] == [2]
    await control.delete("/_emulator/calls")
    assert (await control.get("/_emulator/calls")).json()["calls"] == []


async def test_clock_moves_and_reset_forgets(
    admin: openai.AsyncOpenAI, control: httpx.AsyncClient, emu: EmulatorServer
) -> None:
    now = (await control.get("/_emulator/clock")).json()["now"]
    moved = (await control.post("/_emulator/clock", json={"advance_seconds": 3 * DAY})).json()
    assert moved["now"] - now in range(3 * DAY, 3 * DAY + 5)
    assert (await admin.admin.organization.projects.create(name="later")).created_at >= now + 3 * DAY
    nxt = (await control.post("/_emulator/clock", json={"to": "next_day"})).json()["now"]
    assert nxt - day_start(nxt) < 5
    month = (await control.post("/_emulator/clock", json={"to": "next_month"})).json()["now"]
    assert month >= next_month_start(nxt)
    assert (await control.post("/_emulator/clock", json={"advance_seconds": "soon"})).status_code == 400
    assert (await control.post("/_emulator/reset")).json() == {"ok": True}
    assert abs((await control.get("/_emulator/clock")).json()["now"] - time.time()) < 5
    names = [p.name async for p in admin.admin.organization.projects.list(include_archived=True)]
    assert names == ["Default project"]


async def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "emulator.json"
    admin_key = new_admin_key()
    async with EmulatorServer(admin_key=admin_key, state_file=state_file) as first:
        client = openai.AsyncOpenAI(api_key="unused", admin_api_key=admin_key, base_url=first.base_url, max_retries=0)
        p = await client.admin.organization.projects.create(name="persisted")
        sa = await client.admin.organization.projects.service_accounts.create(project_id=p.id, name="k8s.a.b.r1")
        await client.close()
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    async with EmulatorServer(admin_key=admin_key, state_file=state_file) as second:
        client = openai.AsyncOpenAI(api_key="unused", admin_api_key=admin_key, base_url=second.base_url, max_retries=0)
        assert (await client.admin.organization.projects.retrieve(p.id)).name == "persisted"
        await client.close()
        assert sa.api_key is not None
        data = openai.AsyncOpenAI(api_key=sa.api_key.value, base_url=second.base_url, max_retries=0)
        assert (await data.models.list()).data
        await data.close()


def test_cli_prints_the_listening_line_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = dict(os.environ, OPENAI_ADMIN_KEY="")
    env.pop("OPENAI_ADMIN_KEY")
    proc = subprocess.Popen(
        [sys.executable, "-m", "openai_emulator", "--port", "0", "--state", str(tmp_path / "s.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    try:
        line = lines.get(timeout=30)
        assert line.startswith("emulator listening on http://127.0.0.1:")
        url = line.strip().removeprefix("emulator listening on ")
        assert httpx.get(url + "/_emulator/health", timeout=5).json() == {"ok": True}
        r = httpx.get(url + "/v1/organization/projects", timeout=5)
        assert r.status_code == 401
        assert r.headers["x-request-id"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "admin key: sk-admin" in err
    shown = err.split("admin key: ", 1)[1].split()[0]
    assert "*" * 100 in shown, "only the redacted admin key may be printed"
    assert (tmp_path / "s.json").exists()
