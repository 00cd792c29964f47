"""`GET /api/v1/reports/monthly`: the month's SLA and efficiency report of one customer (or all), as
JSON for the dashboard, or CSV and PDF to download. A customer gets its own, whatever it asks for."""

from __future__ import annotations

import calendar
import csv
import io
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from server import kpis, queries
from server.auth import Principal, authorized, context, db_session, reading_locale
from server.report_pdf import render_pdf
from server.routes.admin import _day
from server.schemas import MonthlyReportOut
from tickets.models import Customer, Ticket
from tickets.notify.locale import LANGUAGES

router = APIRouter(prefix="/api/v1", tags=["efficiency board"])
MONTH = r"^[12]\d{3}-(0[1-9]|1[0-2])$"  # years 1000-2999: dates Python can hold


def _problems(session: Session, start: date, end: date, customer_id: int | None,
              staff: bool) -> tuple[dict[str, int], dict[str, int], list[tuple[str, int]]]:
    lower = datetime(start.year, start.month, start.day, tzinfo=UTC)
    upper = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    query = select(Ticket.kind, Ticket.metric, Ticket.device_id).where(Ticket.opened_at >= lower,
                                                                        Ticket.opened_at < upper)
    if customer_id is not None:
        query = query.where(Ticket.customer_id == customer_id)
    if not staff:
        query = query.where(Ticket.kind.not_in(queries.STAFF_ONLY_KINDS))
    kinds, metrics, devices = Counter[str](), Counter[str](), Counter[str]()
    for kind, metric, device_id in session.execute(query):
        kinds[kind] += 1
        metrics[metric or kind] += 1
        if device_id:
            devices[device_id] += 1
    return dict(kinds), dict(metrics), devices.most_common(10)


@router.get("/reports/monthly", name="monthly_report", response_model=MonthlyReportOut,
            responses={200: {"content": {"text/csv": {}, "application/pdf": {}},
                             "description": "the report (CSV with format=csv, PDF with format=pdf)"}})
def monthly_report(
    who: Annotated[Principal, Depends(authorized)],
    session: Annotated[Session, Depends(db_session)],
    request: Request,
    month: Annotated[str, Query(pattern=MONTH, description="YYYY-MM (UTC)")],
    customer_id: int | None = None,
    format: Literal["json", "csv", "pdf"] = "json",
    lang: Annotated[str | None, Query(pattern="^(" + "|".join(LANGUAGES) + ")$",
                                      description="the PDF's language (default: the reader's)")] = None,
) -> MonthlyReportOut | Response:
    """Tickets opened in the month: first response, MTTA, MTTR, resolution rate, satisfaction, SLA
    attainment per clock, and the problems by kind and metric with the devices that failed most."""
    if who.is_customer:
        customer_id = who.customer_id
    year, number = (int(part) for part in month.split("-"))
    start, end = date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])
    _, total = kpis.compute(session, kpis.KpiFilter(start, end, customer_id))
    by_kind, by_metric, top = _problems(session, start, end, customer_id, not who.is_customer)
    name = session.scalar(select(Customer.name).where(Customer.id == customer_id)) if customer_id else None
    report = MonthlyReportOut(month=month, customer_id=customer_id, customer_name=name,
                              totals=_day(month, total), by_kind=by_kind, by_metric=by_metric,
                              top_devices=[[d, n] for d, n in top])
    if format == "json":
        return report
    name = f'edgewatch-report-{month}{f"-customer-{customer_id}" if customer_id else ""}'
    if format == "pdf":
        locale = reading_locale(session, who, context(request).settings.locale)
        if lang is not None:
            locale = locale.choose(lang, None)
        return Response(render_pdf(report, locale), media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'})
    return Response(_csv(report), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


def _csv(r: MonthlyReportOut) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["section", "item", "value"])
    w.writerow(["report", "month", r.month])
    w.writerow(["report", "customer", r.customer_name or "all customers"])
    t = r.totals
    for key in ("opened", "resolved", "resolution_rate", "first_response_p50_s", "first_response_p90_s", "mtta_s",
                "mttr_s", "ratings", "satisfaction", "backlog"):
        value = getattr(t, key)
        w.writerow(["efficiency", key, "" if value is None else round(value, 4) if isinstance(value, float) else value])
    for s in t.sla:
        w.writerow(["sla", f"{s.clock} settled", s.settled])
        w.writerow(["sla", f"{s.clock} met", s.met])
        w.writerow(["sla", f"{s.clock} rate", "" if s.rate is None else round(s.rate, 4)])
    for kind, n in sorted(r.by_kind.items()):
        w.writerow(["problems by kind", kind, n])
    for metric, n in sorted(r.by_metric.items()):
        w.writerow(["problems by metric", metric, n])
    for device, n in r.top_devices:
        w.writerow(["devices failing most", device, n])
    return "\ufeff" + out.getvalue()  # a byte-order mark, so spreadsheet programs read Chinese names right
