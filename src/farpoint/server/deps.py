"""Request-scoped dependencies: the database session and the app's services."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from farpoint.server.context import AppContext

__all__ = ["Ctx", "DbSession", "get_context", "get_session"]


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; routes that write call `commit()` before answering."""
    ctx: AppContext = request.app.state.ctx
    session = ctx.db.sessions()
    try:
        yield session
    finally:
        if session.in_transaction():
            session.rollback()
        session.close()


DbSession = Annotated[Session, Depends(get_session)]
Ctx = Annotated[AppContext, Depends(get_context)]
