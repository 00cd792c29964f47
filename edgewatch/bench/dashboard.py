"""`edgewatch bench dashboard`: the fleet view with 10 000 devices in headless Chromium.

Fills a fresh database (default: SQLite in a temporary directory; `--database-url` for PostgreSQL)
with a fleet of customers and sites (3 % offline, 1 % red, 2 % orange), serves the real app with
uvicorn on 127.0.0.1, signs in as a supervisor and measures, from the browser:

- first useful paint: navigation start to the first rows of problems on screen (the view's
  `ew-fleet-painted` mark), the median of `--runs` page loads;
- the longest main-thread task while a live update is applied (PerformanceObserver `longtask`,
  which reports tasks over 50 ms; none reported means none that long), for a change of 20 devices'
  health and 50 devices' names;
- the page height.

The baseline, measured in the same page and run, is the full-list approach the view replaced: every
device fetched by cursor and one tile per device drawn (its time excludes the shell's start, so it
favours the baseline), and the redraw of all tiles an update used to cost (timed around the DOM
work and the forced layout). Goals: first useful paint <= 1 s, no task over 50 ms on an update,
page height bounded. Requires Chromium (/usr/bin/chromium) and Playwright.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgewatch.bench._big_fleet import fill_fleet, rule_state
from edgewatch.bench.api import serving

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
GOAL_PAINT_MS = 1000.0
GOAL_TASK_MS = 50.0

# The replaced approach, run in the signed-in page: fetch every device, draw one tile each.
FULL_LIST = """async () => {
  const started = performance.now();
  const devices = [];
  let cursor = null;
  do {
    const answer = await fetch("api/v1/devices?limit=1000" + (cursor ? "&cursor=" + cursor : ""),
                               { credentials: "same-origin" });
    const page = await answer.json();
    devices.push(...page.items);
    cursor = page.next;
  } while (cursor);
  const fetched = performance.now();
  const draw = () => {
    const grid = document.createElement("div");
    grid.className = "grid";
    for (const d of devices) {
      const tile = document.createElement("a");
      tile.className = "tile " + d.health;
      const id = document.createElement("div");
      id.className = "id";
      id.textContent = d.name || d.id;
      const vals = document.createElement("div");
      vals.className = "vals";
      vals.textContent = d.latest ? Object.entries(d.latest).map(([k, v]) => k + " " + v).join(" · ") : "";
      tile.append(id, vals);
      grid.append(tile);
    }
    const view = document.getElementById("view");
    view.replaceChildren(grid);
    return document.documentElement.scrollHeight;  // forces the layout, as the paint would
  };
  const t0 = performance.now();
  const height = draw();
  const firstDraw = performance.now() - t0;
  const t1 = performance.now();
  draw();
  const redraw = performance.now() - t1;
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve)));
  return { paint: fetched - started + firstDraw, fetch: fetched - started, redraw, height, devices: devices.length };
}"""

OBSERVE = """() => {
  window.__longest = 0; window.__tasks = 0;
  performance.clearMeasures();
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      window.__tasks += 1;
      window.__longest = Math.max(window.__longest, e.duration);
    }
  }).observe({ type: "longtask" });
}"""


def _paint_ms(page: Any) -> float:
    page.wait_for_selector("#fleet-grid .tile.red", timeout=30_000)
    for _ in range(200):
        marks = page.evaluate("() => performance.getEntriesByName('ew-fleet-painted').map(m => m.startTime)")
        if marks:
            return float(marks[0])
        time.sleep(0.02)
    raise SystemExit("the fleet view never marked its first paint")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edgewatch bench dashboard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="an empty database to fill (default: SQLite in a temporary directory)")
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5, help="page loads for the first-paint median")
    parser.add_argument("--updates", type=int, default=5, help="live updates to observe")
    parser.add_argument("--cpu-slowdown", type=float, default=1.0,
                        help="Chromium's CPU throttling (4 is a mid-range phone)")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"edgewatch bench dashboard: {CHROMIUM} is not installed")
        return 2
    from playwright.sync_api import sync_playwright
    from sqlalchemy import update

    from server.app import create_app, freeze_startup_heap
    from server.security import hash_token
    from server.settings import ServerSettings
    from tickets.db import create_engine_for, migrate, session_factory
    from tickets.models import ApiToken, Device, RuleState

    with tempfile.TemporaryDirectory(prefix="edgewatch-bench-dashboard-") as tmp:
        engine = create_engine_for(args.database_url or f"sqlite:///{Path(tmp) / 'edgewatch.db'}")
        migrate(engine)
        now = datetime.now(UTC)
        fleet = fill_fleet(engine, args.devices, now=now)
        sessions = session_factory(engine)
        token = "bench-dashboard-supervisor-token"
        with sessions() as session:
            session.add(ApiToken(token_hash=hash_token(token), role="supervisor", name="bench", created_at=now))
            session.commit()
        app = create_app(ServerSettings(data_dir=Path(tmp), telemetry_path=None, poll_interval_s=1.0), sessions)
        freeze_startup_heap()
        with serving(app) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            if args.cpu_slowdown != 1.0:
                cdp = page.context.new_cdp_session(page)
                cdp.send("Emulation.setCPUThrottlingRate", {"rate": args.cpu_slowdown})
            page.goto(base + "/#/fleet")
            page.fill("#token", token)
            page.click("#login-form button")
            _paint_ms(page)  # signed in; the first load also filled the browser's caches
            paints = []
            for _ in range(args.runs):
                page.reload()
                paints.append(_paint_ms(page))
            height = page.evaluate("document.documentElement.scrollHeight")
            rows = page.locator("#fleet-grid .tile").count()

            changed = [f"gw-{i:05d}" for i in range(1, args.devices) if i % 5]
            calm = [d for d in changed if d not in set(fleet.red + fleet.orange + fleet.offline)]
            longest_per_update: list[float] = []
            arrivals: list[float] = []
            own_work: list[float] = []  # the view's own handling and drawing, timed in the page
            for round_ in range(args.updates):
                page.evaluate(OBSERVE)
                red_before = page.text_content("#fleet-counts button[data-health='red']")
                turning = calm[round_ * 20:(round_ + 1) * 20]
                renamed = changed[-(round_ + 1) * 50:][:50]
                with sessions() as session:
                    for device_id in turning:
                        session.add(RuleState(device_id=device_id, state=rule_state("cpu_percent", "red"),
                                              updated_at=datetime.now(UTC)))
                    session.execute(update(Device).where(Device.id.in_(renamed)).values(name=f"renamed {round_}"))
                    session.commit()
                written = time.perf_counter()
                while page.text_content("#fleet-counts button[data-health='red']") == red_before:
                    if time.perf_counter() - written > 30:
                        raise SystemExit("the live update never arrived")
                    time.sleep(0.02)
                arrivals.append((time.perf_counter() - written) * 1000)
                time.sleep(2.5)  # the reorder that follows a change of health, and its page fetch
                longest, tasks, own = page.evaluate(
                    "() => [window.__longest, window.__tasks, Math.max(0, ...performance.getEntriesByType('measure')"
                    ".filter(m => m.name.startsWith('ew-')).map(m => m.duration))]")
                longest_per_update.append(float(longest) if tasks else 0.0)
                own_work.append(float(own))

            page.evaluate(OBSERVE)
            base_line = page.evaluate(FULL_LIST)
            browser.close()

    paint = statistics.median(paints)
    print(f"dashboard fleet view, {args.devices + 0:,} devices ({len(fleet.red)} red, {len(fleet.orange)} orange, "
          f"{len(fleet.offline)} offline), Chromium, CPU slowdown {args.cpu_slowdown:g}x")
    print(f"{'':34}{'this view':>14}{'full list (baseline)':>24}{'ratio':>9}")
    print(f"{'first useful paint, ms':34}{paint:14.0f}{base_line['paint']:24.0f}{base_line['paint'] / paint:8.1f}x")
    print(f"{'  of which fetching, ms':34}{'':>14}{base_line['fetch']:24.0f}")
    worst = max(longest_per_update)
    shown = [f"{x:.0f}" if x else "<50" for x in longest_per_update]
    print(f"{'longest task on an update, ms':34}{(f'{worst:.0f}' if worst else '< 50'):>14}"
          f"{base_line['redraw']:24.0f}")
    print(f"{'  of which the view handling it, ms':34}{max(own_work):14.1f}")
    print(f"{'page height, px':34}{height:14,}{base_line['height']:24,}{base_line['height'] / height:8.0f}x")
    print(f"{'rows in the page':34}{rows:14,}{base_line['devices']:24,}")
    print(f"live updates on screen {statistics.median(arrivals):.0f} ms (median) after the write (poll interval 1 s); "
          f"longest task per update: {', '.join(shown)} ms; first paints: {', '.join(f'{x:.0f}' for x in paints)} ms")
    ok = paint <= GOAL_PAINT_MS and worst <= GOAL_TASK_MS
    print(f"goals: first useful paint <= {GOAL_PAINT_MS:g} ms, no task over {GOAL_TASK_MS:g} ms on an update: "
          f"{'met' if ok else 'missed'}")
    return 0
