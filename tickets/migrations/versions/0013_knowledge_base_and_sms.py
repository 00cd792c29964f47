"""The knowledge base, and SMS as a contact channel.

- `knowledge_entries`: solutions (problem type, symptom, applicable metric and device class, tags,
  root cause, steps, risks, roll-back), their state (draft, published, review_due, retired), review
  date and `search_text` (the words as `tickets.knowledge_search` indexes them);
- `knowledge_links`: the tickets an entry is related to or was used on;
- full-text search over `search_text`: on SQLite the FTS5 table `knowledge_fts` (rowid = entry id,
  kept by `tickets.knowledge_search`), on PostgreSQL the GIN index `ix_knowledge_entries_search`
  over the lexemes of `search_text`;
- `contacts.channel` may be `sms`.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

CHANNELS = ("email", "webhook", "dingtalk", "wecom", "feishu", "inbox")
STATES = ("draft", "published", "review_due", "retired")
LINK_KINDS = ("related", "used")
# The lexemes are the words of search_text as they are (split on spaces), so PostgreSQL's text
# parser, which does not segment Chinese, never sees them: edgewatch has segmented them already.
PG_SEARCH_INDEX = ("CREATE INDEX ix_knowledge_entries_search ON knowledge_entries "
                   "USING gin (array_to_tsvector(string_to_array(search_text, ' ')))")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _channels(values: tuple[str, ...]) -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.drop_constraint(op.f("ck_contacts_channel_allowed"), type_="check")
        batch.create_check_constraint(op.f("ck_contacts_channel_allowed"), _in("channel", values))


def upgrade() -> None:
    _channels((*CHANNELS[:-1], "sms", CHANNELS[-1]))
    op.create_table(
        "knowledge_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("problem_type", sa.String(100), nullable=True),
        sa.Column("symptom", sa.Text(), nullable=False),
        sa.Column("root_cause", sa.Text(), nullable=False),
        sa.Column("steps", sa.Text(), nullable=False),
        sa.Column("risks", sa.Text(), nullable=False),
        sa.Column("rollback", sa.Text(), nullable=False),
        sa.Column("metric", sa.String(64), nullable=True),
        sa.Column("device_class", sa.String(32), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("customer_visible", sa.Boolean(), nullable=False),
        sa.Column("source_ticket_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_by", sa.String(200), nullable=True),
        sa.Column("review_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.CheckConstraint(_in("state", STATES), name=op.f("ck_knowledge_entries_state_allowed")),
        sa.ForeignKeyConstraint(["source_ticket_id"], ["tickets.id"],
                                name=op.f("fk_knowledge_entries_source_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_entries")),
        sa.UniqueConstraint("source_ticket_id", name=op.f("uq_knowledge_entries_source_ticket_id")),
    )
    op.create_index(op.f("ix_knowledge_entries_metric"), "knowledge_entries", ["metric"])
    op.create_index(op.f("ix_knowledge_entries_review_at"), "knowledge_entries", ["review_at"])
    op.create_table(
        "knowledge_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.CheckConstraint(_in("kind", LINK_KINDS), name=op.f("ck_knowledge_links_kind_allowed")),
        sa.ForeignKeyConstraint(["entry_id"], ["knowledge_entries.id"],
                                name=op.f("fk_knowledge_links_entry_id_knowledge_entries")),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_knowledge_links_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_links")),
        sa.UniqueConstraint("entry_id", "ticket_id", "kind", name=op.f("uq_knowledge_links_entry_id_ticket_id_kind")),
    )
    op.create_index(op.f("ix_knowledge_links_entry_id"), "knowledge_links", ["entry_id"])
    op.create_index(op.f("ix_knowledge_links_ticket_id"), "knowledge_links", ["ticket_id"])
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE knowledge_fts USING fts5(body)")
    else:
        op.execute(PG_SEARCH_INDEX)


def downgrade() -> None:
    sms = op.get_bind().exec_driver_sql("SELECT count(*) FROM contacts WHERE channel = 'sms'").scalar()
    if sms:
        raise RuntimeError(f"{sms} contacts are reached by SMS, which the older schema cannot hold: "
                           "give them another channel (or delete them) before downgrading")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS knowledge_fts")
    op.drop_table("knowledge_links")
    op.drop_table("knowledge_entries")  # drops the PostgreSQL search index with it
    _channels(CHANNELS)
