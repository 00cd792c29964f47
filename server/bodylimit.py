"""The gate in front of the app: oversized bodies and bodies sent by nobody are refused unread.

FastAPI reads and parses a request's body before the route's dependencies authenticate the
caller, and reads bodies of any size. This ASGI middleware, the outermost, answers in the API's
JSON error shape:

- a Content-Length over the limit: 413 before anything is read (one that is not a number: 400);
- a body without a Content-Length (chunked) that grows past the limit: reading stops there, the
  app sees the client gone, and the answer is 413 whatever the app would have said;
- a POST, PUT, PATCH or DELETE to `/api/` with neither an Authorization header nor a session
  cookie: 401, except the routes that check a credential of their own (sign-in, the survey link).
  Requests with credentials are authenticated by the routes as before.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OPEN_PREFIXES = ("/api/v1/auth/", "/api/v1/survey/")
NO_CREDENTIALS = "no credentials: send 'Authorization: Bearer <token>' or log in"


def too_large(limit: int) -> str:
    return f"the request body is larger than {limit} bytes"


class RequestGate:
    def __init__(self, app: App, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.lower(): v for k, v in scope.get("headers", [])}
            length = headers.get(b"content-length")
            if length is not None and not length.strip().isdigit():
                await _refuse(send, 400, "Content-Length must be a whole number of bytes")
                return
            if length is not None and int(length) > self.max_body_bytes:
                await _refuse(send, 413, too_large(self.max_body_bytes))
                return
            path: str = scope.get("path", "")
            if (scope.get("method") in UNSAFE and path.startswith("/api/") and not path.startswith(OPEN_PREFIXES)
                    and b"authorization" not in headers and b"ew_session=" not in headers.get(b"cookie", b"")):
                await _refuse(send, 401, NO_CREDENTIALS, (b"www-authenticate", b"Bearer"))
                return
            await self._bounded(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        over = False

        async def bounded_receive() -> Message:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message.get("type") == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not over:
                await send(message)
            elif message.get("type") == "http.response.start":
                await _refuse(send, 413, too_large(self.max_body_bytes))
            # else: the rest of the app's own answer to a request it saw cut short is dropped

        await self.app(scope, bounded_receive, guarded_send)


async def _refuse(send: Send, status: int, detail: str, *extra: tuple[bytes, bytes]) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": body})
