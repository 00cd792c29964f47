"""The telemetry seam: the one interface between the collector, which writes device samples, and the
server, which reads them back for the device charts, with one implementation per store.

| module | owns |
|---|---|
| `model.py` | points, series, the `TelemetryStore` protocol, the bucket plan (which tier answers a read) |
| `sqlite.py` | the embedded store: raw samples and incremental 1-minute and 1-hour roll-ups in SQLite |
| `influxdb.py` | InfluxDB 1.x and 2.x through `/write` and InfluxQL `/query`, roll-ups written by edgewatch |
| `victoriametrics.py` | VictoriaMetrics: line protocol in, query API out, its own query-time downsampling |
| `null.py` | the store that keeps nothing |
| `lineproto.py` | line protocol for writing, HTTP error translation |
| `settings.py` | the `[telemetry]` settings both sides read, and `open_store` |
| `errors.py` | `StoreUnavailable`, `PointsRefused` |

It imports only `common/` and `rules/` of edgewatch; `collector/` and `server/` import it.
"""

from telemetry.errors import PointsRefused, StoreUnavailable, TelemetryError
from telemetry.model import CORE_METRICS, History, Latest, Point, Series, TelemetryStore

__all__ = ["CORE_METRICS", "History", "Latest", "Point", "PointsRefused", "Series", "StoreUnavailable",
           "TelemetryError", "TelemetryStore"]
