"""Full-text search of the knowledge base: SQLite FTS5 and PostgreSQL full-text search, Chinese included.

Neither database's own tokenizer segments Chinese (SQLite's `unicode61` and PostgreSQL's default
parser both take a run of Han characters for one word), so edgewatch segments text before either
sees it: `terms` lower-cases runs of letters and digits and cuts runs of CJK characters into
overlapping character bigrams (a lone character stays one term), the usual way of indexing CJK
without a dictionary. An entry's terms, joined by single spaces, are its `search_text`; a query is
cut the same way, so 服务器宕机 finds 网关服务器宕机 (服务 务器 器宕 宕机 are all there).

- SQLite: the FTS5 table `knowledge_fts` (rowid = entry id), written here with the entry;
- PostgreSQL: `search_text` split on spaces is the tsvector (`array_to_tsvector`, GIN-indexed by
  migration 0013) and the query a tsquery of quoted lexemes, so the parser never re-cuts the terms.

The same terms, and the same `overlap` score, rank matches on both databases alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import String, cast, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.orm import Session

from tickets.models import KnowledgeEntry

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+")
_CJK_RUN = re.compile(rf"[{_CJK}]+")
# Words too common to tell entries apart: a query made of them alone finds nothing.
STOP_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "in", "is", "it", "its", "of", "on",
    "or", "that", "the", "this", "to", "was", "were", "with",
})
MAX_QUERY_TERMS = 64
# Words every generated ticket text holds (tickets.notify.message, tickets.opening): they tell no
# ticket apart, and an OR query on them would rank nearly every entry. Left out when a ticket is
# matched, not when people search.
TICKET_WORDS = frozenset({
    "alert", "consecutive", "device", "exceeded", "gw", "level", "maintenance", "on", "opened", "orange", "over",
    "pre", "readings", "red", "rt", "service", "site", "threshold", "ticket", "value",
})


def terms(value: str) -> list[str]:
    """The distinct search terms of a text, in order: lower-cased words, CJK runs as bigrams."""
    out: list[str] = []
    for match in _TOKEN.finditer(value.lower()):
        run = match.group()
        if _CJK_RUN.fullmatch(run):
            out += [run] if len(run) == 1 else [run[i:i + 2] for i in range(len(run) - 1)]
        else:
            out.append(run)
    return list(dict.fromkeys(out))


def query_terms(value: str) -> list[str]:
    """The terms of a query worth looking for (no stop words, no lone Latin letters)."""
    kept = [t for t in terms(value) if t not in STOP_WORDS and not (len(t) == 1 and t.isascii() and t.isalpha())]
    return kept[:MAX_QUERY_TERMS]


def ticket_terms(value: str) -> list[str]:
    """The query terms of a ticket's text that can tell entries apart (no numbers, no boilerplate)."""
    return [t for t in query_terms(value) if t not in TICKET_WORDS and not t.isdigit()]


def document(entry: KnowledgeEntry) -> str:
    """What of an entry is searched: its words, its metric and device class, its tags."""
    parts: Iterable[str | None] = (
        entry.title, entry.problem_type, entry.symptom, entry.root_cause, entry.steps, entry.risks,
        entry.rollback, entry.metric, entry.device_class, " ".join(str(t) for t in entry.tags or ()),
    )
    return "\n".join(p for p in parts if p)


def overlap(wanted: Iterable[str], found: Iterable[str]) -> float:
    """The share of the wanted terms that are found: 1.0 when every one is there."""
    want = set(wanted)
    return len(want & set(found)) / len(want) if want else 0.0


def _sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def index(session: Session, entry: KnowledgeEntry) -> None:
    """(Re)index an entry after a change; flushes it so that it has its id."""
    entry.search_text = " ".join(terms(document(entry)))
    session.flush()
    if _sqlite(session):
        session.execute(text("DELETE FROM knowledge_fts WHERE rowid = :id"), {"id": entry.id})
        session.execute(text("INSERT INTO knowledge_fts (rowid, body) VALUES (:id, :body)"),
                        {"id": entry.id, "body": entry.search_text})


def search(session: Session, query: str | list[str], *, every_term: bool = True, limit: int = 50) -> list[int]:
    """Ids of the entries (any state) whose text holds every query term (or any, with
    `every_term=False`), best first by the database's own rank. `query` is a text, or its terms."""
    words = query_terms(query) if isinstance(query, str) else query
    if not words:
        return []
    if _sqlite(session):
        # Each term as an FTS5 string: terms are letters and digits only, so no quote is inside.
        expression = (" AND " if every_term else " OR ").join(f'"{w}"' for w in words)
        rows = session.execute(
            text("SELECT rowid FROM knowledge_fts WHERE knowledge_fts MATCH :q ORDER BY bm25(knowledge_fts) "
                 "LIMIT :n"), {"q": expression, "n": limit})
        return [int(r[0]) for r in rows]
    # Quoted lexemes, taken as they are by tsquery's input (no parser, no dictionary).
    tsquery = cast(cast((" & " if every_term else " | ").join(f"'{w}'" for w in words), String), TSQUERY)
    vector = func.array_to_tsvector(func.string_to_array(KnowledgeEntry.search_text, literal_column("' '")))
    found = session.execute(
        select(KnowledgeEntry.id).where(vector.op("@@")(tsquery))
        .order_by(func.ts_rank(vector, tsquery).desc(), KnowledgeEntry.id).limit(limit))
    return [int(r[0]) for r in found]
