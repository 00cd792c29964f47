"""Who may call what: one rule per API route, keyed by the route's name.

`create_app` refuses to start when an API route has no rule here, and the role-matrix test calls
every route with every role, so a new endpoint cannot slip in unguarded.
Customers see only their own devices, tickets and notifications: the routes they may call narrow
every query to their customer (see `server/scope.py`).
"""

from __future__ import annotations

from tickets.models import TokenRole

ADMIN = frozenset({TokenRole.ADMIN})
MANAGERS = frozenset({TokenRole.ADMIN, TokenRole.SUPERVISOR})
STAFF = frozenset({TokenRole.ADMIN, TokenRole.SUPERVISOR, TokenRole.ENGINEER})
# Every role of a person; an `ingest` token (a monitor delivering alerts) may call its intake only.
EVERYONE = frozenset(TokenRole) - {TokenRole.INGEST}
INGEST = frozenset({TokenRole.INGEST})

RULES: dict[str, frozenset[TokenRole]] = {
    "whoami": EVERYONE,
    # devices and alerts
    "list_devices": EVERYONE,
    "list_device_groups": EVERYONE,
    "live_events": EVERYONE,  # each event narrowed to the caller's devices and tickets
    "get_device": EVERYONE,
    "device_history": EVERYONE,
    "device_forecast": EVERYONE,
    "update_device": MANAGERS,
    "import_devices": MANAGERS,
    "list_alerts": EVERYONE,
    "metrics_catalog": EVERYONE,
    # tickets
    "list_tickets": EVERYONE,
    "attention": EVERYONE,  # narrowed to the customer's own
    "get_ticket": EVERYONE,
    "create_ticket": MANAGERS,
    "ticket_action": STAFF,
    "add_note": EVERYONE,  # a customer may write on its own tickets
    "attach_rca": STAFF,
    "rate_ticket": EVERYONE,  # satisfaction is the customer's to give (staff may record it for them)
    "list_notifications": EVERYONE,
    # thresholds
    "get_thresholds": STAFF,
    "put_thresholds": MANAGERS,
    "preview_thresholds": STAFF,
    # customers, contacts, tokens
    "list_customers": EVERYONE,
    "create_customer": MANAGERS,
    "list_contacts": EVERYONE,
    "create_contact": MANAGERS,
    "update_customer": MANAGERS,
    "delete_customer": MANAGERS,
    "update_contact": MANAGERS,
    "delete_contact": MANAGERS,
    "list_tokens": ADMIN,
    "create_token": ADMIN,
    "revoke_token": ADMIN,
    # staff, staff groups and their on-call rotas
    "list_staff": STAFF,
    "get_staff": STAFF,
    "create_staff": MANAGERS,
    "update_staff": MANAGERS,
    "delete_staff": MANAGERS,
    "list_staff_groups": STAFF,
    "get_staff_group": STAFF,
    "create_staff_group": MANAGERS,
    "update_staff_group": MANAGERS,
    "delete_staff_group": MANAGERS,
    # user accounts (sign-in with a password)
    "list_users": ADMIN,
    "get_user": ADMIN,
    "create_user": ADMIN,
    "update_user": ADMIN,
    "delete_user": ADMIN,
    "change_own_password": EVERYONE,
    # alerts of other monitors
    "ingest_alertmanager": INGEST,
    "ingest_zabbix": INGEST,
    # the knowledge base: staff write drafts and mark entries used; knowledge managers (supervisors
    # and admins) publish, review and retire, and edit published entries (checked in the route);
    # customers read published, customer-visible entries only
    "list_knowledge": EVERYONE,
    "get_knowledge": EVERYONE,
    "create_knowledge": STAFF,
    "update_knowledge": STAFF,
    "publish_knowledge": MANAGERS,
    "review_knowledge": MANAGERS,
    "retire_knowledge": MANAGERS,
    "use_knowledge": STAFF,
    "ticket_knowledge": STAFF,
    # maintenance windows (noise control)
    "list_maintenance_windows": STAFF,
    "create_maintenance_window": MANAGERS,
    "update_maintenance_window": MANAGERS,
    "delete_maintenance_window": MANAGERS,
    # operations and the efficiency board
    "list_dead_letters": STAFF,
    "get_kpis": STAFF,
    "monthly_report": EVERYONE,  # a customer gets its own
}

# Routes anyone may call: they check their own credentials (login, the survey link's token) or
# show nothing private (health, Prometheus metrics, the dashboard's static shell and a ticket link's
# redirect to it).
PUBLIC = frozenset({"login", "logout", "submit_survey", "healthz", "metrics", "dashboard", "survey_page",
                    "ticket_page", "knowledge_page", "messages"})
