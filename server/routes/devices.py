"""The device registry: fleet health, latest values, history with threshold lines, per-device settings, and
the metric catalogue (names, labels, units, possible values: `rules.metrics`) the dashboard reads."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from rules import ThresholdError, parse_thresholds, with_devices
from rules.metrics import ALIASES, CORE_METRICS, METRIC_NAME_PATTERN, METRICS, unit_of
from rules.thresholds import Thresholds
from server import forecast, queries, thresholds
from server.auth import Principal, authorized, context, db_session
from server.domain import refusals
from server.errors import check_time
from server.schemas import (
    AlertOut,
    DeviceGroupOut,
    DeviceGroupsOut,
    DeviceId,
    DeviceIn,
    DeviceOut,
    DevicePage,
    ForecastOut,
    HistoryOut,
    HistoryPoint,
    MetricHistory,
    MetricOut,
    MetricsCatalogOut,
    Page,
    ThresholdLine,
)
from telemetry.errors import StoreUnavailable
from tickets import registry, suppression
from tickets.audit import record_entity
from tickets.models import OPEN_STATUSES, Customer, Device, DeviceState, Severity, Ticket

# Metrics one history or forecast call may ask for: each is a query on the telemetry store.
MAX_METRICS = 32
logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["devices"])
Who = Annotated[Principal, Depends(authorized)]
Db = Annotated[Session, Depends(db_session)]
MAX_HISTORY = timedelta(days=92)
METRIC_NAME = f"^{METRIC_NAME_PATTERN.pattern}$"


def _scope(who: Principal) -> int | None:
    return who.customer_id if who.is_customer else None


def device_out(view: queries.DeviceView, file_document: dict[str, Any] | None = None, *,
               listed: bool = False) -> DeviceOut:
    """The device; with a thresholds file, `thresholds` is the device's table in the file (the ones in force).
    A list leaves the (sealed) address out."""
    d = view.device
    own = d.thresholds if file_document is None else thresholds.device_table(file_document, d.id)
    return DeviceOut(
        id=d.id, device_class=d.device_class, customer_id=d.customer_id, state=d.state,  # type: ignore[arg-type]
        health=view.health,
        first_seen_at=d.first_seen_at, last_seen_at=d.last_seen_at, offline_since=d.offline_since,
        agent_version=d.agent_version, interval_s=d.interval_s, latest_seq=d.latest_seq, latest_ts=d.latest_ts,
        latest=d.latest, thresholds=own, open_tickets=view.open_tickets, name=d.name,
        customer_name=d.customer.name if d.customer is not None else None, site=d.site,
        address=None if listed else d.address,
        tags=d.tags, parent_id=d.parent_id, decommissioned_at=d.decommissioned_at,
    )


def _file_document(request: Request) -> dict[str, Any] | None:
    file = context(request).thresholds_file
    return None if file is None else file.current()[0].document


@router.get("/metrics-catalog", name="metrics_catalog", response_model=MetricsCatalogOut, tags=["devices"])
def metrics_catalog(who: Who) -> MetricsCatalogOut:
    """Every metric edgewatch knows: name, label, unit, possible values, built-in threshold and old names.

    Agents may send metrics of their own too; those are plain numbers (0..100 for a `*_percent`)."""
    aliases: dict[str, list[str]] = {}
    for old, new in ALIASES.items():
        aliases.setdefault(new, []).append(old)
    return MetricsCatalogOut(
        items=[MetricOut(**m._asdict(), aliases=aliases.get(m.name, [])) for m in METRICS.values()],
        red_factor=Thresholds().red_factor,
    )


Health = Literal["red", "orange", "offline", "unknown", "green"]


def _filter(who: Principal, customer_id: int | None, device_class: str | None, state: str | None,
            prefix: str | None, health: list[Health] | None, site: str | None, tag: str | None, q: str | None,
            include_decommissioned: bool) -> queries.DeviceFilter:
    return queries.DeviceFilter(
        customer_id=customer_id, scope_customer_id=_scope(who), device_class=device_class, state=state,
        prefix=prefix, health=tuple(health or ()), site=site, tag=tag, q=(q or "").strip() or None,
        include_decommissioned=include_decommissioned,
    )


HealthQuery = Annotated[list[Health] | None, Query(description="repeat for several: red, orange, offline, ...")]
Text = Annotated[str | None, Query(max_length=200)]


@router.get("/devices", name="list_devices", response_model=DevicePage)
def list_devices(
    request: Request,
    who: Who,
    session: Db,
    customer_id: int | None = None,
    device_class: Literal["gateway", "router"] | None = None,
    state: DeviceState | None = None,
    prefix: Annotated[str | None, Query(max_length=64, description="device ids starting with this")] = None,
    health: HealthQuery = None,
    site: Text = None,
    tag: Text = None,
    q: Annotated[str | None, Query(max_length=200, description="in the id, name, site or customer's name")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    page: Annotated[int | None, Query(ge=1, le=100_000, description="a numbered page instead of `cursor`")] = None,
    per_page: Annotated[int, Query(ge=0, le=1000, description="devices per numbered page")] = 100,
    sort: Annotated[Literal["health", "id", "group"], Query(
        description="numbered pages: problems first (health), by id, or by customer and site (group)")] = "health",
    include_decommissioned: Annotated[bool, Query(description="also devices no longer expected")] = False,
) -> DevicePage:
    """Devices with health: red/orange (worst active alert), offline, green, unknown (never seen).
    Decommissioned devices only when asked.

    Without `page`: by id, paged with `cursor`/`next`. With `page`: numbered pages in the `sort`
    order, with the number of matching devices (`total`) and their `counts` per health state."""
    where = _filter(who, customer_id, device_class, state, prefix, health, site, tag, q, include_decommissioned)
    doc = _file_document(request)
    alerts = context(request).alerts
    if page is not None:
        worst = alerts.worst(session)
        counts = queries.health_counts(session, where, worst)
        total = sum(counts[h] for h in where.health) if where.health else sum(counts.values())
        rows = queries.page_of_devices(session, where, worst, sort=sort, page=page, per_page=per_page) \
            if per_page else []
        items = [device_out(v, doc, listed=True) for v in queries.device_views(session, rows)]
        return DevicePage(items=items, next=None, total=total, counts=counts, page=page, per_page=per_page)
    try:
        rows, nxt = queries.list_devices(session, where, limit=limit, cursor=cursor,
                                         worst=alerts.worst(session) if where.health else None)
    except queries.BadCursor as exc:
        raise HTTPException(422, str(exc)) from None
    return DevicePage(items=[device_out(v, doc, listed=True) for v in queries.device_views(session, rows)], next=nxt)


@router.get("/device-groups", name="list_device_groups", response_model=DeviceGroupsOut)
def list_device_groups(
    request: Request,
    who: Who,
    session: Db,
    customer_id: int | None = None,
    health: HealthQuery = None,
    site: Text = None,
    tag: Text = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> DeviceGroupsOut:
    """The fleet by customer and site, each group with its devices per health state; groups with the
    most red, orange and offline devices first. The same filters as the device list."""
    where = _filter(who, customer_id, None, None, None, health, site, tag, q, False)
    groups = queries.device_groups(session, where, context(request).alerts.worst(session))
    return DeviceGroupsOut(items=[DeviceGroupOut(customer_id=g.customer_id, customer_name=g.customer_name,
                                                 site=g.site, total=sum(g.counts.values()), counts=g.counts)
                                  for g in groups])


def _device(session: Session, device_id: str, who: Principal) -> Device:
    device = queries.device_for(session, device_id, _scope(who))
    if device is None:
        raise HTTPException(404, f"device {device_id!r} is not registered")
    return device


@router.get("/devices/{device_id}", name="get_device", response_model=DeviceOut,
            responses={404: {"description": "no such device (or not yours)"}})
def get_device(device_id: DeviceId, request: Request, who: Who, session: Db) -> DeviceOut:
    return device_out(queries.device_views(session, [_device(session, device_id, who)])[0], _file_document(request))


@router.get("/devices/{device_id}/history", name="device_history", response_model=HistoryOut,
            responses={404: {"description": "no such device (or not yours)"},
                       503: {"description": "the telemetry store is unreachable or unreadable"}})
def device_history(
    device_id: DeviceId,
    request: Request,
    who: Who,
    session: Db,
    metric: Annotated[list[Annotated[str, Query(pattern=METRIC_NAME)]] | None,
                      Query(max_length=MAX_METRICS, description=f"repeat for several, at most {MAX_METRICS}")] = None,
    start: datetime | None = None,
    end: datetime | None = None,
    points: Annotated[int, Query(ge=10, le=2000)] = 300,
) -> HistoryOut:
    """Each metric's values over time (bucket means) with its threshold, red and clear levels."""
    ctx = context(request)
    device = _device(session, device_id, who)
    end = check_time("end", end) or ctx.clock.now()
    start = check_time("start", start) or end - timedelta(hours=6)
    if not start < end or end - start > MAX_HISTORY:
        raise HTTPException(422, f"start must be before end, and the span at most {MAX_HISTORY.days} days")
    names = list(dict.fromkeys(metric or [*CORE_METRICS, *(k for k in (device.latest or {}) if k not in CORE_METRICS)]))
    resolved = thresholds.resolved(ctx.thresholds_file, session, device.id, device.device_class, device.thresholds)
    try:
        series = ctx.telemetry.history(device.id, names, start.timestamp(), end.timestamp(), points).series
    except StoreUnavailable as exc:
        logger.warning("device history of %s unavailable: %s", device.id, exc)
        raise HTTPException(503, f"the telemetry store cannot be read now: {exc}") from None
    out = []
    for s in series:
        rule = resolved.rule_for(device.id, device.device_class, s.metric) if resolved else None
        line = ThresholdLine(threshold=rule.threshold, red_level=rule.red_level, clear_level=rule.clear_level) \
            if rule else None
        out.append(MetricHistory(metric=s.metric, unit=unit_of(s.metric),
                                 points=[HistoryPoint(ts=t, value=v) for t, v in s.points], threshold=line))
    return HistoryOut(device_id=device.id, start=start, end=end, available=ctx.telemetry.available, metrics=out)


@router.get("/devices/{device_id}/forecast", name="device_forecast", response_model=ForecastOut,
            responses={404: {"description": "no such device (or not yours)"}})
def device_forecast(
    device_id: DeviceId,
    who: Who,
    session: Db,
    metric: Annotated[list[Annotated[str, Query(pattern=METRIC_NAME)]] | None,
                      Query(max_length=MAX_METRICS, description=f"repeat for several, at most {MAX_METRICS}")] = None,
) -> ForecastOut:
    """Each metric's trend forecast against its orange threshold (eta, confidence, the forecast line
    to the horizon), its anomaly score and the open predictive warning, as last stored by the collector."""
    device = _device(session, device_id, who)
    return forecast.device_forecast(session, device.id, list(dict.fromkeys(metric)) if metric else None)


@router.put("/devices/{device_id}", name="update_device", response_model=DeviceOut,
            responses={404: {"description": "no such device"}, 422: {"description": "a bad threshold: key and reason"},
                       409: {"description": "`thresholds` given while a thresholds file is configured"}})
def update_device(device_id: DeviceId, body: DeviceIn, request: Request, who: Who, session: Db) -> DeviceOut:
    """Set any of customer, class, threshold overrides, name, site, address, tags, the device it sits
    behind (`parent_id`) and `decommissioned`; a running collector applies them without restart.

    A device not seen yet is registered, so it can be set up before its agent first reports.
    `thresholds: null` removes the device's overrides. With a thresholds file configured, the file owns
    per-device thresholds too: a body with `thresholds` is refused (409); class and customer can be set.
    """
    ctx = context(request)
    now = ctx.clock.now()
    given = body.model_fields_set
    file = ctx.thresholds_file
    if file is not None and "thresholds" in given:
        raise HTTPException(409, file.refusal(f"The thresholds of device {device_id} are") +
                            "; its class and customer can still be set here")
    device = session.get(Device, device_id)
    if device is None:
        device = Device(id=device_id, state=DeviceState.UNKNOWN.value)
        session.add(device)
    if "customer_id" in given and body.customer_id is not None and session.get(Customer, body.customer_id) is None:
        raise HTTPException(422, f"customer_id: customer {body.customer_id} does not exist")
    before: dict[str, Any] = {
        "customer_id": device.customer_id, "device_class": device.device_class, "thresholds": device.thresholds,
    }
    after = dict(before)
    for key in ("customer_id", "device_class", "thresholds"):
        if key in given:
            after[key] = getattr(body, key)
    if after["thresholds"] != before["thresholds"] or after["device_class"] != before["device_class"]:
        if file is not None:  # the file's table for the device, with the class it is given here
            base, own = file.current()[0].document, None
        else:
            base, own = thresholds.load(session).value, after["thresholds"]
        merged = with_devices(base, [(device_id, own, after["device_class"])])
        try:
            parse_thresholds(merged, thresholds.SOURCE)
        except ThresholdError as exc:
            session.rollback()
            key = exc.key.removeprefix(f"devices.{device_id}.")
            raise HTTPException(422, f"thresholds.{key}: {exc.reason}", headers={"X-Error-Key": key}) from None
    for key, value in after.items():
        if before[key] != value:
            setattr(device, key, value)
            record_entity(session, entity="device", entity_id=device_id, actor=who.actor, action="update",
                         field=key, old=before[key], new=value, at=now)
    people = {key: getattr(body, key) for key in registry.PEOPLE_FIELDS if key in given}
    if people:
        with refusals(session):
            session.flush()
            registry.update(session, device_id, people, actor=who.actor, at=now)
    if after["device_class"] != before["device_class"]:
        # Running collectors re-read device classes when the thresholds version moves.
        thresholds.save(session, thresholds.load(session).value, expected_version=None, actor=who.actor, now=now)
    session.commit()
    return device_out(queries.device_views(session, [device])[0], _file_document(request))


# How a held alert is shown (tickets.suppression's reasons).
HELD_AS = {"window": "maintenance", "parent": "parent", "incident": "incident"}


@router.get("/alerts", name="list_alerts", response_model=Page[AlertOut], tags=["alerts"])
def list_alerts(
    who: Who,
    session: Db,
    severity: Severity | None = None,
    device_id: DeviceId | None = None,
) -> Page[AlertOut]:
    """Active alerts (the rule engine's state), worst first, each with its open ticket when there is one."""
    alerts = queries.active_alerts(session, [device_id] if device_id else None)
    ids = sorted({d for d, _ in alerts})
    devices = {d.id: d for d in session.scalars(select(Device).where(Device.id.in_(ids)))}
    open_keys = {f"{d}/{m}" for d, m in alerts}
    tickets = dict(session.execute(
        select(Ticket.open_key, Ticket.id).where(Ticket.open_key.in_(open_keys),
                                                 Ticket.status.in_([s.value for s in OPEN_STATUSES]))
    ).all())
    held = suppression.held_view(session, sorted(open_keys))
    scope = _scope(who)
    # A customer sees which ticket holds its alert only when that ticket is its own (a shared gateway's
    # ticket may belong to another customer).
    holding = {h.ticket_id for h in held.values() if h.ticket_id is not None}
    visible = holding if scope is None else set(session.scalars(
        select(Ticket.id).where(Ticket.id.in_(holding), Ticket.customer_id == scope))) if holding else set()
    items = []
    for (dev, metric), sev in sorted(alerts.items(), key=lambda kv: (kv[1] != Severity.RED, kv[0])):
        customer = devices[dev].customer_id if dev in devices else None
        if (severity and sev != severity) or (scope is not None and customer != scope):
            continue
        hold = held.get(f"{dev}/{metric}")
        items.append(AlertOut(device_id=dev, metric=metric, severity=sev,  # type: ignore[arg-type]
                              customer_id=customer, ticket_id=tickets.get(f"{dev}/{metric}"),
                              held=HELD_AS.get(hold.reason) if hold else None,  # type: ignore[arg-type]
                              held_on_ticket_id=hold.ticket_id if hold and hold.ticket_id in visible else None,
                              window_id=hold.window_id if hold else None))
    return Page[AlertOut](items=items, next=None)
