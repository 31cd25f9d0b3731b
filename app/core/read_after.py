"""Read-your-writes, per request: the read-after position, where a request reads, a retry.

With read replicas (`app/core/replicas.py`) the app wraps every request in
`ReadRoutingMiddleware`, which gives it a `ReadContext`; `get_session` finds that in the
scope (`READ_CONTEXT`) and asks it for the sessionmaker. Without replicas neither exists.

- Writes, routes marked `@reads_primary` and reads retried after their replica failed use
  the primary; other GETs and HEADs what `ReadRouting.choose` picks for the client's
  read-after position.
- A committed write's response carries the primary's WAL position, read after the commit,
  in the `Atlas-Read-After` header and the `atlas_read_after` cookie; the client sends
  either back (a valid header wins over the cookie; a malformed value counts as absent).
- A read that fails on a replica (connection lost, recovery conflict) before any byte of
  its response was sent runs again on the primary.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.database import READ_CONTEXT, READ_METHODS, declares_primary
from app.core.replicas import (
    Fallback,
    ReadRouting,
    Replica,
    SessionMaker,
    parse_lsn,
    replica_failure,
)

logger = logging.getLogger("app.replicas")

READ_AFTER_HEADER = "Atlas-Read-After"
READ_AFTER_COOKIE = "atlas_read_after"


def client_position(request: Request) -> int | None:
    """The read-after position the client sent: a valid header, else the cookie, else None."""
    header = parse_lsn(request.headers.get(READ_AFTER_HEADER))
    if header is not None:
        return header
    return parse_lsn(request.cookies.get(READ_AFTER_COOKIE))


@dataclass(slots=True)
class ReadContext:
    """What one request's database access is routed by, and what it reports back.

    Created by `ReadRoutingMiddleware` for each request, found by `get_session` in the scope.
    """

    routing: ReadRouting
    primary_only: bool = False
    replica: Replica | None = None
    retry: Fallback | None = None
    read_after: str | None = None

    async def sessionmaker(self, request: Request) -> SessionMaker:
        """The primary's for a write; for a read, what `ReadRouting.choose` picks."""
        if request.method not in READ_METHODS:
            return self.routing.primary_sessionmaker
        if declares_primary(request):
            # It locks rows: a transaction on the primary, like a write's.
            self.routing.on_primary()
            return self.routing.primary_sessionmaker
        if self.primary_only:
            return self.routing.on_primary()
        sessionmaker, self.replica = await self.routing.choose(client_position(request))
        return sessionmaker

    def failed(self, error: BaseException) -> None:
        """The request's session raised `error`: if it was a replica's, retry on the primary."""
        if self.replica is None:
            return
        reason = replica_failure(error)
        if reason is None:
            return
        if reason is Fallback.DOWN:
            self.routing.mark_down(self.replica, type(error).__name__)
        self.retry = reason

    async def committed(self, request: Request) -> None:
        """After a write's commit: the position its response tells the client to read after."""
        if request.method not in READ_METHODS:
            self.read_after = await self.routing.position_after_commit()


class ReadRoutingMiddleware:
    """Gives each request a `ReadContext`; runs a read again on the primary if its replica failed.

    Innermost, so the rate limiter, the access log and the metrics see one request. A write's
    response gets the read-after header and cookie. A read whose replica failed before its
    response started (the problem response of the error is held back, never sent) is served
    again from the primary, with the body it received replayed.
    """

    def __init__(self, app: ASGIApp, *, always_secure: bool) -> None:
        self.app = app
        self.always_secure = always_secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        routing: ReadRouting = scope["state"]["read_routing"]
        context = ReadContext(routing)
        scope[READ_CONTEXT] = context
        if scope["method"] not in READ_METHODS:
            await self.app(scope, receive, self._with_position(scope, context, send))
        else:
            await self._read(scope, receive, send, context)

    async def _read(self, scope: Scope, receive: Receive, send: Send, context: ReadContext) -> None:
        """Serve a read; if its replica failed before the response started, again on the primary."""
        received: list[Message] = []
        started = False
        held_back = False

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received.append(message)
            return message

        async def first_send(message: Message) -> None:
            nonlocal started, held_back
            if held_back:
                return
            if not started and context.retry is not None:
                held_back = True
                return
            started = True
            await send(message)

        try:
            await self.app(scope, recording_receive, first_send)
        except Exception:
            if started or context.retry is None:
                raise
            held_back = True
        if not held_back or context.retry is None:
            return
        assert context.replica is not None
        logger.warning(
            "read retried on the primary",
            extra={"replica": context.replica.name, "reason": context.retry.value},
        )
        context.routing.retried(context.retry)

        async def replaying_receive() -> Message:
            return received.pop(0) if received else await receive()

        again = {**scope, READ_CONTEXT: ReadContext(context.routing, primary_only=True)}
        await self.app(again, replaying_receive, send)

    def _with_position(self, scope: Scope, context: ReadContext, send: Send) -> Send:
        secure = self.always_secure or scope.get("scheme") == "https"

        async def send_with_position(message: Message) -> None:
            if message["type"] == "http.response.start" and context.read_after is not None:
                headers = MutableHeaders(scope=message)
                headers.append(READ_AFTER_HEADER, context.read_after)
                cookie = (
                    f"{READ_AFTER_COOKIE}={context.read_after}; Max-Age="
                    f"{context.routing.cookie_max_age}; Path=/; HttpOnly; SameSite=Strict"
                )
                headers.append("Set-Cookie", f"{cookie}; Secure" if secure else cookie)
            await send(message)

        return send_with_position
