"""The addresses notifications link to answer a browser: `/tickets/N` and `/survey/TOKEN`."""

from __future__ import annotations

import re

from tests.server.harness import Harness


def test_a_ticket_link_redirects_to_the_dashboards_ticket_route(sqlite_api: Harness) -> None:
    answer = sqlite_api.client.get("/tickets/42", follow_redirects=False)
    assert answer.status_code == 303
    # Relative, so that a proxy's path prefix is kept: /edgewatch/tickets/42 -> /edgewatch/#/tickets/42.
    assert answer.headers["location"] == "../#/tickets/42"
    assert answer.headers["cache-control"] == "no-store"
    followed = sqlite_api.client.get("/tickets/42")
    assert followed.status_code == 200 and 'id="login-form"' in followed.text
    assert str(followed.url).endswith("/#/tickets/42")


def test_a_ticket_link_needs_a_number(sqlite_api: Harness) -> None:
    answer = sqlite_api.client.get("/tickets/abc", follow_redirects=False)
    assert answer.status_code == 422 and "ticket_id" in answer.json()["detail"]


def test_pages_load_their_assets_relative_to_where_they_are_served(sqlite_api: Harness) -> None:
    for path in ("/", "/survey/some-token"):
        page = sqlite_api.client.get(path).text
        assets = re.findall(r'(?:href|src)="([^"#]+)"', page)
        assert assets and not [a for a in assets if a.startswith("/")], (path, assets)
