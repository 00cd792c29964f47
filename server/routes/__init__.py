"""The API's routers, one module per area; every route's access rule is in `server/policy.py`."""
