"""The knowledge base: solutions that grow from fixed tickets and are offered where they help.

An entry follows the service standard's structure (problem type, symptom, applicable metric,
device class and tags, root cause, steps, risks, roll-back, related tickets) and its life:

    draft --publish--> published --(review date passes)--> review_due --review--> published
      \\_____________________ retire (from any of them) ______________________/--> retired

- Closing a red ticket that has its root-cause report (or attaching the report to a closed red
  ticket) offers a draft prefilled from the report, the device and the metric (`offer_draft`).
- Publishing sets the review date (`[knowledge] review_months` after, six by default);
  `move_due_to_review` moves the entries whose date passed to the review queue (it runs before
  every read of the knowledge API, so no timer is needed).
- `matches` finds, for a ticket, the published entries and the past resolved tickets that fit it
  (same metric and device class, similar text); engineers mark the entry they used (`mark_used`).
- `repeated_faults` and `board_figures` are the data analysis: faults that recur on a device, the
  knowledge reuse rate and the first-time fix rate.

Every change is audited (entity `knowledge`); wrong input raises InvalidInput naming the field.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common.config import Settings
from tickets import audit, knowledge_search, validate
from tickets.errors import IllegalTransition, InvalidInput, NotFound, TicketError
from tickets.models import (
    Device,
    KnowledgeEntry,
    KnowledgeLink,
    KnowledgeLinkKind,
    KnowledgeState,
    Level,
    Ticket,
    TicketStatus,
)

SECTION = "knowledge"
MAX_TEXT = 10_000
TEXT_FIELDS = ("symptom", "root_cause", "steps", "risks", "rollback")
LINE_FIELDS = {"title": 300, "problem_type": 100, "metric": 64, "device_class": 32}
EDITABLE = (*LINE_FIELDS, *TEXT_FIELDS, "tags", "customer_visible", "ticket_ids")
SHOWN_TO_STAFF = (KnowledgeState.PUBLISHED.value, KnowledgeState.REVIEW_DUE.value)
FINISHED = (TicketStatus.RESOLVED.value, TicketStatus.CLOSED.value)
# How much a shared metric and device class weigh against the text (whose overlap counts up to 1).
METRIC_WEIGHT, CLASS_WEIGHT = 0.5, 0.25
PAST_TICKETS_SCANNED = 200
CANDIDATES = 50  # best text matches a ticket's entries are chosen from


class NotKnowledgeManager(TicketError):
    """The change is a knowledge manager's to make (supervisors and admins)."""


@dataclass(frozen=True)
class KnowledgeSettings:
    """`[knowledge]`: when a published entry is due for review, and what counts as a repeated fault."""

    review_months: int = 6
    repeat_count: int = 3
    repeat_window_days: int = 30

    @classmethod
    def from_settings(cls, s: Settings) -> KnowledgeSettings:
        return cls(
            review_months=s.int("review_months", 6, env="KNOWLEDGE_REVIEW_MONTHS", minimum=1),
            repeat_count=s.int("repeat_count", 3, env="KNOWLEDGE_REPEAT_COUNT", minimum=2),
            repeat_window_days=s.int("repeat_window_days", 30, env="KNOWLEDGE_REPEAT_WINDOW_DAYS", minimum=1),
        )


def add_months(moment: datetime, months: int) -> datetime:
    """The same time `months` calendar months later (the 31st becomes the month's last day)."""
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


# ---------------------------------------------------------------- reading


def get(session: Session, entry_id: int) -> KnowledgeEntry:
    entry = session.get(KnowledgeEntry, entry_id)
    if entry is None:
        raise NotFound(f"knowledge entry {entry_id} does not exist")
    return entry


def visible_to_customer(entry: KnowledgeEntry) -> bool:
    """Customers see published entries marked customer-visible, never drafts."""
    return entry.state == KnowledgeState.PUBLISHED and entry.customer_visible


def related_ticket_ids(entry: KnowledgeEntry) -> list[int]:
    return [link.ticket_id for link in entry.links if link.kind == KnowledgeLinkKind.RELATED]


def used_on(entry: KnowledgeEntry) -> list[int]:
    return [link.ticket_id for link in entry.links if link.kind == KnowledgeLinkKind.USED]


def listing(session: Session, *, query: str | None = None, states: Sequence[str] = (), customer: bool = False,
            metric: str | None = None, limit: int = 100) -> list[KnowledgeEntry]:
    """Entries, newest change first, or best match first with a full-text `query` (every term must be
    there). Customers get only published, customer-visible entries."""
    where = []
    if customer:
        where += [KnowledgeEntry.state == KnowledgeState.PUBLISHED.value, KnowledgeEntry.customer_visible.is_(True)]
    if states:
        where.append(KnowledgeEntry.state.in_(list(states)))
    if metric:
        where.append(KnowledgeEntry.metric == metric)
    if query is not None and query.strip():
        ids = knowledge_search.search(session, query, limit=max(limit * 4, 100))
        if not ids:
            return []
        allowed = set(session.scalars(select(KnowledgeEntry.id).where(KnowledgeEntry.id.in_(ids), *where)))
        best = [i for i in ids if i in allowed][:limit]
        rows = {e.id: e for e in session.scalars(select(KnowledgeEntry).where(KnowledgeEntry.id.in_(best)))}
        return [rows[i] for i in best]
    return list(session.scalars(select(KnowledgeEntry).where(*where)
                                .order_by(KnowledgeEntry.updated_at.desc(), KnowledgeEntry.id.desc()).limit(limit)))


def move_due_to_review(session: Session, now: datetime) -> list[int]:
    """Published entries whose review date has come move to the review queue (audited); their ids."""
    due = list(session.scalars(select(KnowledgeEntry).where(
        KnowledgeEntry.state == KnowledgeState.PUBLISHED.value, KnowledgeEntry.review_at <= now)))
    for entry in due:
        _set_state(session, entry, KnowledgeState.REVIEW_DUE, actor="knowledge review", at=now,
                   reason=f"review date {entry.review_at.isoformat() if entry.review_at else ''} reached")
    return [e.id for e in due]


# ---------------------------------------------------------------- writing


def create(session: Session, fields: Mapping[str, Any], *, actor: str, at: datetime,
           source_ticket_id: int | None = None) -> KnowledgeEntry:
    """A new draft."""
    values, ticket_ids = _values(session, fields)
    if not values.get("title"):
        raise InvalidInput("title", "must not be empty")
    initial: dict[str, Any] = {**{f: "" for f in TEXT_FIELDS}, "customer_visible": False, **values}
    entry = KnowledgeEntry(**initial, state=KnowledgeState.DRAFT.value, created_by=actor, created_at=at,
                           updated_at=at, source_ticket_id=source_ticket_id)
    session.add(entry)
    knowledge_search.index(session, entry)
    for ticket_id in ticket_ids:
        _link(session, entry, ticket_id, KnowledgeLinkKind.RELATED, actor, at)
    audit.record_entity(session, entity="knowledge", entity_id=str(entry.id), actor=actor, action="create", at=at,
                        ticket_id=source_ticket_id, new={"title": entry.title, "state": entry.state})
    return entry


def update(session: Session, entry_id: int, fields: Mapping[str, Any], *, actor: str, at: datetime,
           manager: bool) -> KnowledgeEntry:
    """Change the fields given. Drafts are anyone's on staff to edit; a published entry only a
    knowledge manager's; a retired one nobody's."""
    entry = get(session, entry_id)
    if entry.state == KnowledgeState.RETIRED:
        raise IllegalTransition(f"knowledge entry {entry.id} is retired and cannot be edited")
    if entry.state != KnowledgeState.DRAFT and not manager:
        raise NotKnowledgeManager(f"knowledge entry {entry.id} is {entry.state}: only a knowledge manager "
                              "(supervisor or admin) may edit it")
    values, ticket_ids = _values(session, fields)
    if "title" in values and not values["title"]:
        raise InvalidInput("title", "must not be empty")
    for name, value in values.items():
        old = getattr(entry, name)
        if old != value:
            setattr(entry, name, value)
            audit.record_entity(session, entity="knowledge", entity_id=str(entry.id), actor=actor, action="edited",
                                at=at, field=name, old=old, new=value)
    for ticket_id in ticket_ids:
        _link(session, entry, ticket_id, KnowledgeLinkKind.RELATED, actor, at)
    entry.updated_at = at
    knowledge_search.index(session, entry)
    return entry


def publish(session: Session, entry_id: int, settings: KnowledgeSettings, *, actor: str,
            at: datetime) -> KnowledgeEntry:
    """A draft (or an entry due for review) becomes published, due for review `review_months` later."""
    entry = get(session, entry_id)
    if entry.state not in (KnowledgeState.DRAFT, KnowledgeState.REVIEW_DUE):
        raise IllegalTransition(f"knowledge entry {entry.id} is {entry.state}: only a draft or an entry due for "
                                "review can be published")
    missing = [f for f in ("symptom", "steps") if not getattr(entry, f).strip()]
    if missing:
        raise InvalidInput(missing[0], f"knowledge entry {entry.id} needs a {missing[0]} before it is published")
    _published(session, entry, settings, actor, at, "publish")
    return entry


def review(session: Session, entry_id: int, settings: KnowledgeSettings, *, actor: str, at: datetime,
           note: str | None = None) -> KnowledgeEntry:
    """A knowledge manager checked the entry and it still holds: published again, with a new review date."""
    entry = get(session, entry_id)
    if entry.state not in (KnowledgeState.PUBLISHED, KnowledgeState.REVIEW_DUE):
        raise IllegalTransition(f"knowledge entry {entry.id} is {entry.state}: only a published entry or one due "
                                "for review can be reviewed")
    _published(session, entry, settings, actor, at, "reviewed", validate.text(note, "note", 500))
    return entry


def retire(session: Session, entry_id: int, *, actor: str, at: datetime, reason: str | None = None) -> KnowledgeEntry:
    """Take an entry out of use (a draft nobody wants, a solution that no longer holds); it is kept."""
    entry = get(session, entry_id)
    if entry.state == KnowledgeState.RETIRED:
        raise IllegalTransition(f"knowledge entry {entry.id} is already retired")
    entry.retired_at = at
    _set_state(session, entry, KnowledgeState.RETIRED, actor=actor, at=at, reason=validate.text(reason, "note", 500))
    return entry


def mark_used(session: Session, entry_id: int, ticket_id: int, *, actor: str, at: datetime) -> KnowledgeLink:
    """An engineer applied the entry on this ticket (counted once per ticket)."""
    entry = get(session, entry_id)
    if entry.state not in SHOWN_TO_STAFF:
        raise IllegalTransition(f"knowledge entry {entry.id} is {entry.state}: only a published entry can be used")
    if session.get(Ticket, ticket_id) is None:
        raise InvalidInput("ticket_id", f"ticket {ticket_id} does not exist")
    return _link(session, entry, ticket_id, KnowledgeLinkKind.USED, actor, at)


def offer_draft(session: Session, ticket: Ticket, *, actor: str, at: datetime) -> KnowledgeEntry | None:
    """The draft a closed red ticket with its root-cause report offers, prefilled from the report, the
    device and the metric; None when the ticket does not qualify or already has its draft."""
    if ticket.level != Level.RED or not ticket.rca or ticket.status != TicketStatus.CLOSED:
        return None
    if session.scalars(select(KnowledgeEntry.id).where(KnowledgeEntry.source_ticket_id == ticket.id)).first():
        return None
    rca: Mapping[str, Any] = ticket.rca
    device = session.get(Device, ticket.device_id) if ticket.device_id else None
    symptom = str(rca.get("symptom") or "")
    first_line = next((line.strip() for line in symptom.splitlines() if line.strip()), "")
    actions = rca.get("actions") or []
    fields = {
        "title": (first_line or ticket.title)[:300],
        "problem_type": (ticket.metric or ticket.kind)[:100],
        "symptom": symptom,
        "root_cause": "\n\n".join(str(rca[k]) for k in ("investigation", "responsibility") if rca.get(k)),
        "steps": "\n".join(f"- {a}" for a in actions) if isinstance(actions, list) else str(actions),
        "metric": ticket.metric,
        "device_class": device.device_class if device else None,
        "tags": list(device.tags or []) if device else None,
        "ticket_ids": [ticket.id],
    }
    entry = create(session, fields, actor=actor, at=at, source_ticket_id=ticket.id)
    audit.record(session, ticket, actor=actor, action="knowledge_draft", at=at, field="knowledge",
                 new=entry.id, reason="a closed red ticket with its root-cause report offers a knowledge draft")
    return entry


# ---------------------------------------------------------------- matching


@dataclass(frozen=True)
class EntryMatch:
    entry: KnowledgeEntry
    score: float


@dataclass(frozen=True)
class TicketMatch:
    ticket: Ticket
    score: float


def ticket_text(ticket: Ticket) -> str:
    rca = ticket.rca or {}
    parts = [ticket.title, ticket.description, ticket.first_judgement, *(str(rca.get(k) or "") for k in rca)]
    return "\n".join(p for p in parts if p)


def _device_class(session: Session, ticket: Ticket) -> str | None:
    device = session.get(Device, ticket.device_id) if ticket.device_id else None
    return device.device_class if device else None


def matching_entries(session: Session, ticket: Ticket, *, limit: int = 5, customer: bool = False) -> list[EntryMatch]:
    """Published entries (and those due for review) that fit the ticket, best first: the share of the
    ticket's words they hold, plus a weight for the same metric and for the same device class."""
    wanted = knowledge_search.ticket_terms(ticket_text(ticket))
    # The candidates are the database's best text matches (any state: few are not shown); a
    # ticket's text names its metric (cpu_percent: the terms cpu, percent), so entries written for
    # the metric are among them.
    ids = knowledge_search.search(session, wanted, every_term=False, limit=CANDIDATES)
    if not ids:
        return []
    device_class = _device_class(session, ticket)
    states = (KnowledgeState.PUBLISHED.value,) if customer else SHOWN_TO_STAFF
    where = [KnowledgeEntry.state.in_(states), KnowledgeEntry.id.in_(ids)]
    if customer:
        where.append(KnowledgeEntry.customer_visible.is_(True))
    scored = []  # scored on the few columns it takes; only the best entries are loaded whole
    for entry_id, state, metric, entry_class, search_text in session.execute(
            select(KnowledgeEntry.id, KnowledgeEntry.state, KnowledgeEntry.metric, KnowledgeEntry.device_class,
                   KnowledgeEntry.search_text).where(*where)):
        score = knowledge_search.overlap(wanted, search_text.split())
        score += METRIC_WEIGHT if ticket.metric and metric == ticket.metric else 0.0
        score += CLASS_WEIGHT if device_class and entry_class == device_class else 0.0
        if metric and ticket.metric and metric != ticket.metric:
            score /= 2  # written for another metric: still shown, after the ones for this one
        scored.append((round(score, 4), state != KnowledgeState.PUBLISHED, entry_id))
    best = sorted(scored, key=lambda m: (-m[0], m[1], -m[2]))[:limit]
    entries = {e.id: e for e in session.scalars(select(KnowledgeEntry).where(
        KnowledgeEntry.id.in_([entry_id for _, _, entry_id in best])))}
    return [EntryMatch(entries[entry_id], score) for score, _, entry_id in best]


def matching_tickets(session: Session, ticket: Ticket, *, limit: int = 5) -> list[TicketMatch]:
    """Resolved or closed tickets of the same metric and device class, most similar text first."""
    if not ticket.metric:
        return []
    device_class = _device_class(session, ticket)
    query = (select(Ticket).outerjoin(Device, Device.id == Ticket.device_id)
             .where(Ticket.metric == ticket.metric, Ticket.id != ticket.id, Ticket.status.in_(FINISHED))
             .order_by(Ticket.id.desc()).limit(PAST_TICKETS_SCANNED))
    query = query.where(Device.device_class == device_class) if device_class else query
    wanted = knowledge_search.ticket_terms(ticket_text(ticket))
    found = [TicketMatch(t, round(knowledge_search.overlap(wanted, knowledge_search.terms(ticket_text(t))), 4))
             for t in session.scalars(query)]
    found.sort(key=lambda m: (-m.score, -m.ticket.id))
    return found[:limit]


def best_match(session: Session, ticket: Ticket) -> KnowledgeEntry | None:
    """The published entry a dispatch message names, if any fits."""
    found = [m for m in matching_entries(session, ticket, limit=3) if m.entry.state == KnowledgeState.PUBLISHED]
    return found[0].entry if found else None


# ---------------------------------------------------------------- data analysis


@dataclass(frozen=True)
class RepeatedFault:
    device_id: str
    metric: str  # the metric, or the ticket kind for tickets without one (offline, manual)
    device_class: str | None
    tickets: int
    first_opened_at: datetime
    last_opened_at: datetime
    ticket_ids: tuple[int, ...]
    entries_used: tuple[tuple[int, str], ...]  # (id, title) of the entries used on those tickets


def repeated_faults(session: Session, start: datetime, end: datetime, *, at_least: int = 3) -> list[RepeatedFault]:
    """Devices and metrics with `at_least` tickets opened in [start, end), most tickets first."""
    rows = session.execute(
        select(Ticket.id, Ticket.device_id, func.coalesce(Ticket.metric, Ticket.kind), Ticket.opened_at,
               Device.device_class)
        .outerjoin(Device, Device.id == Ticket.device_id)
        .where(Ticket.opened_at >= start, Ticket.opened_at < end, Ticket.device_id.is_not(None),
               Ticket.status != TicketStatus.CANCELLED.value)
        .order_by(Ticket.opened_at, Ticket.id)
    ).all()
    groups: dict[tuple[Any, str], list[Any]] = defaultdict(list)
    for row in rows:
        groups[(row[1], row[2])].append(row)
    repeated = {key: found for key, found in groups.items() if len(found) >= at_least}
    ticket_ids = [r[0] for found in repeated.values() for r in found]
    used: dict[int, list[tuple[int, str]]] = defaultdict(list)
    if ticket_ids:
        for tid, eid, title in session.execute(
                select(KnowledgeLink.ticket_id, KnowledgeEntry.id, KnowledgeEntry.title)
                .join(KnowledgeEntry, KnowledgeEntry.id == KnowledgeLink.entry_id)
                .where(KnowledgeLink.kind == KnowledgeLinkKind.USED.value, KnowledgeLink.ticket_id.in_(ticket_ids))):
            used[tid].append((eid, title))
    out = []
    for (device_id, metric), found in repeated.items():
        entries = tuple(dict.fromkeys(e for r in found for e in used.get(r[0], [])))
        out.append(RepeatedFault(device_id, metric, found[0][4], len(found), found[0][3], found[-1][3],
                                 tuple(r[0] for r in found), entries))
    out.sort(key=lambda f: (-f.tickets, f.device_id, f.metric))
    return out


@dataclass(frozen=True)
class BoardFigures:
    resolved: int  # tickets resolved in the window (with a device and a metric or kind)
    knowledge_used: int  # of those, with a knowledge entry marked used
    fixed_first_time: int  # of those, not followed by another ticket for the same device and metric
    repeated: list[RepeatedFault]

    @property
    def reuse_rate(self) -> float | None:
        return self.knowledge_used / self.resolved if self.resolved else None

    @property
    def first_time_fix_rate(self) -> float | None:
        return self.fixed_first_time / self.resolved if self.resolved else None


def board_figures(session: Session, start: datetime, end: datetime, settings: KnowledgeSettings,
                  *, customer_id: int | None = None) -> BoardFigures:
    """Knowledge reuse and first-time fixes of the tickets resolved in [start, end), and the faults
    repeated in the `repeat_window_days` before `end`.

    A ticket is fixed the first time when no ticket for the same device and metric (or kind) was
    opened within `repeat_window_days` after it was resolved (as far as is known by now)."""
    window = timedelta(days=settings.repeat_window_days)
    scope = [Ticket.customer_id == customer_id] if customer_id is not None else []
    resolved = session.execute(
        select(Ticket.id, Ticket.device_id, func.coalesce(Ticket.metric, Ticket.kind), Ticket.resolved_at)
        .where(Ticket.resolved_at >= start, Ticket.resolved_at < end, Ticket.device_id.is_not(None), *scope)
    ).all()
    ids = [r[0] for r in resolved]
    used = set(session.scalars(select(KnowledgeLink.ticket_id).where(
        KnowledgeLink.kind == KnowledgeLinkKind.USED.value, KnowledgeLink.ticket_id.in_(ids)))) if ids else set()
    # Every later ticket a resolved one could be followed by was opened in [start, end + window).
    opened: dict[tuple[Any, str], list[tuple[int, datetime]]] = defaultdict(list)
    if ids:
        for tid, device_id, key, at in session.execute(
                select(Ticket.id, Ticket.device_id, func.coalesce(Ticket.metric, Ticket.kind), Ticket.opened_at)
                .where(Ticket.opened_at >= start, Ticket.opened_at < end + window, Ticket.device_id.is_not(None))):
            opened[(device_id, key)].append((tid, at))
    recurred = 0
    for tid, device_id, key, resolved_at in resolved:
        finished = resolved_at
        assert finished is not None  # selected by its resolved_at
        if any(other != tid and finished <= at < finished + window for other, at in opened.get((device_id, key), ())):
            recurred += 1
    repeated = repeated_faults(session, end - window, end, at_least=settings.repeat_count)
    if customer_id is not None:
        mine = set(session.scalars(select(Device.id).where(Device.customer_id == customer_id)))
        repeated = [f for f in repeated if f.device_id in mine]
    return BoardFigures(len(ids), len(used), len(ids) - recurred, repeated)


# ---------------------------------------------------------------- helpers


def _values(session: Session, fields: Mapping[str, Any]) -> tuple[dict[str, Any], list[int]]:
    unknown = sorted(set(fields) - set(EDITABLE))
    if unknown:
        raise InvalidInput(unknown[0], f"unknown field; a knowledge entry has {', '.join(EDITABLE)}")
    out: dict[str, Any] = {}
    for name, limit in LINE_FIELDS.items():
        if name in fields:
            out[name] = validate.text(fields[name], name, limit)
    for name in TEXT_FIELDS:
        if name in fields:
            out[name] = _long_text(fields[name], name)
    if "tags" in fields:
        out["tags"] = validate.tags(fields["tags"])
    if "customer_visible" in fields:
        out["customer_visible"] = validate.flag(fields["customer_visible"], "customer_visible")
    ticket_ids: list[int] = []
    if fields.get("ticket_ids") is not None:
        raw = fields["ticket_ids"]
        if not isinstance(raw, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in raw):
            raise InvalidInput("ticket_ids", "must be a list of ticket ids")
        known = set(session.scalars(select(Ticket.id).where(Ticket.id.in_(raw))))
        missing = [i for i in raw if i not in known]
        if missing:
            raise InvalidInput("ticket_ids", f"ticket {missing[0]} does not exist")
        ticket_ids = list(dict.fromkeys(raw))
    return out, ticket_ids


def _long_text(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be text, got {type(value).__name__}")
    clean = value.strip()
    if len(clean) > MAX_TEXT:
        raise InvalidInput(field, f"is {len(clean)} characters long; at most {MAX_TEXT} are kept")
    return clean


def _link(session: Session, entry: KnowledgeEntry, ticket_id: int, kind: KnowledgeLinkKind, actor: str,
          at: datetime) -> KnowledgeLink:
    existing = next((ln for ln in entry.links if ln.ticket_id == ticket_id and ln.kind == kind), None)
    if existing is not None:
        return existing
    link = KnowledgeLink(entry_id=entry.id, ticket_id=ticket_id, kind=kind.value, at=at, actor=actor)
    entry.links.append(link)
    session.add(link)
    audit.record_entity(session, entity="knowledge", entity_id=str(entry.id), actor=actor, action=f"link_{kind.value}",
                        at=at, ticket_id=ticket_id, field="ticket", new=ticket_id)
    return link


def _set_state(session: Session, entry: KnowledgeEntry, state: KnowledgeState, *, actor: str, at: datetime,
               reason: str | None = None) -> None:
    audit.record_entity(session, entity="knowledge", entity_id=str(entry.id), actor=actor, action="state", at=at,
                        field="state", old=entry.state, new=state.value, reason=reason)
    entry.state = state.value
    entry.updated_at = at


def _published(session: Session, entry: KnowledgeEntry, settings: KnowledgeSettings, actor: str, at: datetime,
               action: str, reason: str | None = None) -> None:
    review_at = add_months(at, settings.review_months)
    audit.record_entity(session, entity="knowledge", entity_id=str(entry.id), actor=actor, action=action, at=at,
                        field="review_at", old=entry.review_at, new=review_at, reason=reason)
    entry.review_at = review_at
    if entry.published_at is None or action == "publish":
        entry.published_at, entry.published_by = at, actor
    _set_state(session, entry, KnowledgeState.PUBLISHED, actor=actor, at=at, reason=reason)
