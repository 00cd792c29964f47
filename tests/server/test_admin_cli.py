"""`edgewatch admin` as a process, on the embedded SQLite database: staff, a response team with its
rota, a user whose password comes from stdin and who then signs in to the server, customers, a
device, and the CSV import (bad rows named by line, exit 1, nothing stored; a good file stored)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from server.app import create_app
from server.settings import ServerSettings
from tickets.db import create_engine_for, session_factory

ROOT = Path(__file__).resolve().parents[2]


def admin(data: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EDGEWATCH_DATA_DIR": str(data), "PYTHONPATH": str(ROOT)}
    env.pop("EDGEWATCH_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "edgewatch.cli", "admin", *args], input=stdin, capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)


def ok(data: Path, *args: str, stdin: str | None = None) -> list[dict]:
    done = admin(data, *args, stdin=stdin)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_provisioning_from_a_script(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (wang,) = ok(data, "staff", "add", "--name", "王芳", "--email", "wangfang@desk.test", "--tag", "north")
    assert (wang["name"], wang["channel"], wang["tags"]) == ("王芳", "email", ["north"])
    ok(data, "staff", "add", "--name", "Li Na", "--role", "supervisor")
    (team,) = ok(data, "groups", "add", "--name", "Red response", "--level", "red", "--member", "王芳",
                 "--member", "Li Na")
    assert team["member_ids"] == [wang["id"], wang["id"] + 1]
    ok(data, "groups", "rota", "Red response", "--start", "2020-01-06T09:00:00+08:00", "--timezone", "Asia/Shanghai",
       "--member", "王芳", "--member", "Li Na")
    shifts = ok(data, "groups", "oncall", "Red response", "--shifts", "3")
    assert len(shifts) == 3 and {s["name"] for s in shifts} == {"王芳", "Li Na"}
    refused = admin(data, "groups", "add", "--name", "Red response", "--level", "red")
    assert refused.returncode == 1 and "exists already" in refused.stderr

    (user,) = ok(data, "users", "add", "wangfang", "--role", "engineer", "--staff", "王芳", "--password-stdin",
                 stdin="a long password 2027\n")
    assert (user["username"], user["staff_id"], user["active"]) == ("wangfang", wang["id"], True)
    (zoned,) = ok(data, "users", "set", "wangfang", "--language", "zh-CN", "--timezone", "Asia/Shanghai")
    assert (zoned["language"], zoned["timezone"]) == ("zh-CN", "Asia/Shanghai")
    unknown = admin(data, "staff", "set", "王芳", "--timezone", "Asia/Peking")
    assert unknown.returncode == 1 and "unknown time zone 'Asia/Peking'" in unknown.stderr
    short = admin(data, "users", "add", "shorty", "--role", "engineer", "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "password: must have 10" in short.stderr

    assert ok(data, "customers", "list") == []  # customers are created through the API

    bad = tmp_path / "bad.csv"
    bad.write_text("id,name,device_class\ngw-1,One,gateway\ngw 2,Two,\ngw-3,,toaster\n", encoding="utf-8")
    done = admin(data, "import-devices", str(bad))
    assert done.returncode == 1
    assert f"{bad}: line 3, id: " in done.stderr and f"{bad}: line 4, device_class: " in done.stderr
    assert "nothing was imported" in done.stderr
    good = tmp_path / "good.csv"
    good.write_text("\ufeffid,name,site,tags,parent_id\ngw-1,泵站 One,North,fiber;north,\nrt-2,Two,North,,gw-1\n",
                    encoding="utf-8")
    (trial,) = ok(data, "import-devices", str(good), "--dry-run")
    assert trial == {"created": ["gw-1", "rt-2"], "updated": [], "unchanged": [], "dry_run": True}
    (result,) = ok(data, "import-devices", str(good))
    assert result["created"] == ["gw-1", "rt-2"] and result["dry_run"] is False
    (device,) = ok(data, "devices", "set", "rt-2", "--decommission", "--clear", "site")
    assert device["decommissioned_at"] and device["changed"] == ["site", "decommissioned"]

    engine = create_engine_for(f"sqlite:///{data / 'edgewatch.db'}")
    app = create_app(ServerSettings(data_dir=data, admin_token="bootstrap-admin-token-0123456789"),
                     session_factory(engine))
    with TestClient(app) as client:
        login = client.post("/api/v1/auth/login", json={"username": "WangFang", "password": "a long password 2027"})
        assert login.status_code == 200 and login.json()["name"] == "王芳"
        assert (login.json()["language"], login.json()["timezone"]) == ("zh-CN", "Asia/Shanghai")
        devices = client.get("/api/v1/devices", params={"include_decommissioned": "true"}).json()["items"]
        assert [(d["id"], d["name"], d["parent_id"]) for d in devices] == [("gw-1", "泵站 One", None),
                                                                            ("rt-2", "Two", "gw-1")]
    with engine.connect() as conn:
        actors = set(conn.exec_driver_sql("SELECT actor FROM audit_entries WHERE entity = 'staff'").scalars())
    assert len(actors) == 1 and actors.pop().startswith("cli:")
    engine.dispose()
    ok(data, "users", "disable", "wangfang")
    missing = admin(data, "users", "passwd", "nobody", "--password-stdin", stdin="whatever long\n")
    assert missing.returncode == 1 and "no user 'nobody'" in missing.stderr
