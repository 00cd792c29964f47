"""The monthly SLA and efficiency report: per customer or for all, as JSON, CSV and PDF; a customer
gets its own report whatever it asks for."""

from __future__ import annotations

import csv
import io

import pytest
from pypdf import PdfReader

from tests.server.harness import Harness
from tickets.models import Customer

pytestmark = pytest.mark.postgres


def test_monthly_report_per_customer_as_json_and_csv(api: Harness) -> None:
    api.add_device("gw-a", "Acme Power")
    api.add_device("rt-b", "Beta Water")
    red = api.raise_alert("gw-a", "cpu_percent", "red", 97.0)
    api.raise_alert("gw-a", "mem_percent", "orange", 70.0)
    api.raise_alert("rt-b", "latency_ms", "red", 400.0)
    api.client.post(f"/api/v1/tickets/{red}/acknowledge", headers=api.auth("engineer"), json={})
    month = api.clock.now().strftime("%Y-%m")
    acme = api.customers["Acme Power"]
    report = api.client.get("/api/v1/reports/monthly", params={"month": month, "customer_id": acme},
                            headers=api.auth("supervisor")).json()
    assert report["customer_name"] == "Acme Power" and report["totals"]["opened"] == 2
    assert report["by_metric"] == {"cpu_percent": 1, "mem_percent": 1} and report["top_devices"] == [["gw-a", 2]]
    assert any(s["clock"] == "first_response" and s["met"] == 1 for s in report["totals"]["sla"])
    everyone = api.client.get("/api/v1/reports/monthly", params={"month": month}, headers=api.auth("admin")).json()
    assert everyone["totals"]["opened"] == 3 and everyone["customer_name"] is None
    # A customer asking for another's report gets its own.
    own = api.client.get("/api/v1/reports/monthly", params={"month": month, "customer_id": api.customers["Beta Water"]},
                         headers=api.auth("customer")).json()
    assert own["customer_name"] == "Acme Power" and own["totals"]["opened"] == 2
    answer = api.client.get("/api/v1/reports/monthly", params={"month": month, "format": "csv"},
                            headers=api.auth("customer"))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert f"edgewatch-report-{month}-customer-{acme}.csv" in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.text.lstrip("\ufeff"))))
    assert rows[0] == ["section", "item", "value"] and ["report", "customer", "Acme Power"] in rows
    assert ["efficiency", "opened", "2"] in rows and ["devices failing most", "gw-a", "2"] in rows
    bad = api.client.get("/api/v1/reports/monthly", params={"month": "2026-13"}, headers=api.auth("admin"))
    assert bad.status_code == 422


def test_monthly_report_as_pdf_in_the_readers_language(api: Harness) -> None:
    api.add_device("gw-a", "Acme Power")
    api.raise_alert("gw-a", "cpu_percent", "red", 97.0)
    month = api.clock.now().strftime("%Y-%m")
    acme = api.customers["Acme Power"]
    english = api.client.get("/api/v1/reports/monthly", params={"month": month, "format": "pdf"},
                             headers=api.auth("customer"))
    assert english.status_code == 200 and english.headers["content-type"] == "application/pdf"
    assert f"edgewatch-report-{month}-customer-{acme}.pdf" in english.headers["content-disposition"]
    text = _pdf_text(english.content)
    assert "Monthly SLA and efficiency report" in text and "Acme Power" in text
    assert "CPU usage" in text and "on-site service" in text and "first response" in text
    chinese = api.client.get("/api/v1/reports/monthly", params={"month": month, "format": "pdf", "lang": "zh-CN"},
                             headers=api.auth("customer"))
    text = _pdf_text(chinese.content)
    assert "月度 SLA 与服务效率报告" in text and "CPU 使用率" in text and "现场服务" in text and "首次响应" in text
    # A customer whose language is Chinese gets it without asking.
    with api.sessions() as session:
        session.get(Customer, acme).language = "zh-CN"
        session.commit()
    own = api.client.get("/api/v1/reports/monthly", params={"month": month, "format": "pdf"},
                         headers=api.auth("customer"))
    assert "新建工单" in _pdf_text(own.content)
    bad = api.client.get("/api/v1/reports/monthly", params={"month": month, "format": "pdf", "lang": "fr"},
                         headers=api.auth("customer"))
    assert bad.status_code == 422 and "lang" in bad.text


def _pdf_text(content: bytes) -> str:
    assert content.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
