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
EVERYONE = frozenset(TokenRole)

RULES: dict[str, frozenset[TokenRole]] = {
    "whoami": EVERYONE,
    # devices and alerts
    "list_devices": EVERYONE,
    "get_device": EVERYONE,
    "device_history": EVERYONE,
    "device_forecast": EVERYONE,
    "update_device": MANAGERS,
    "import_devices": MANAGERS,
    "list_alerts": EVERYONE,
    "metrics_catalog": EVERYONE,
    # tickets
    "list_tickets": EVERYONE,
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
    # maintenance windows (noise control)
    "list_maintenance_windows": STAFF,
    "create_maintenance_window": MANAGERS,
    "update_maintenance_window": MANAGERS,
    "delete_maintenance_window": MANAGERS,
    # operations and the efficiency board
    "list_dead_letters": STAFF,
    "get_kpis": STAFF,
}

# Routes anyone may call: they check their own credentials (login, the survey link's token) or
# show nothing private (health, Prometheus metrics, the dashboard's static shell and a ticket link's
# redirect to it).
PUBLIC = frozenset({"login", "logout", "submit_survey", "healthz", "metrics", "dashboard", "survey_page",
                    "ticket_page", "messages"})
