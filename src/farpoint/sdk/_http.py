"""The HTTP plumbing under the SDK: requests, problem details, pagination."""

from __future__ import annotations

from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

import farpoint
from farpoint.core.errors import FarpointError, error_for_status
from farpoint.wire.common import parse_ref

__all__ = ["API_PREFIX", "ServerUnreachable", "raise_for_problem"]

API_PREFIX = "/api/v1"
M = TypeVar("M", bound=BaseModel)


class ServerUnreachable(FarpointError):
    """The server could not be reached or did not answer (no HTTP status came back)."""

    status = 503
    code = "server-unreachable"
    title = "Cannot reach the server"


def raise_for_problem(response: httpx.Response) -> None:
    """Raise the `farpoint.core.errors` exception a non-2xx response stands for."""
    if response.is_success:
        return
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        detail = body.get("detail")
        if not isinstance(detail, str) or not detail:
            detail = response.text or response.reason_phrase
        extra = {k: v for k, v in body.items() if k not in ("status", "detail")}
    else:
        detail = response.text.strip() or response.reason_phrase
        extra = {}
    raise error_for_status(response.status_code, detail, **extra)


def segment(value: str | int) -> str:
    """One path segment, escaped so a name cannot change the route."""
    return quote(str(value), safe="")


class _Base:
    """An httpx.Client on `<base_url>/api/v1` that speaks Farpoint's conventions."""

    page_size: int = 500
    """Items asked for per page when a list is followed to its end (the server caps at 500)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        root = base_url.rstrip("/")
        if root.endswith(API_PREFIX):
            root = root[: -len(API_PREFIX)]
        self.base_url = root
        headers = {
            "User-Agent": f"farpoint-sdk/{farpoint.__version__}",
            "Accept": "application/json",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=root + API_PREFIX + "/",
            headers=headers,
            transport=transport,
            timeout=timeout,
        )

    def close(self) -> None:
        """Close the connections; the client cannot be used afterwards."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path.lstrip("/"), **kwargs)
        except httpx.TimeoutException as exc:
            raise ServerUnreachable(
                f"the Farpoint server at {self.base_url} did not answer {method} "
                f"{API_PREFIX}/{path.lstrip('/')} in time ({exc}); "
                "try again, or raise the client's timeout"
            ) from exc
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"cannot reach the Farpoint server at {self.base_url}: {exc}; "
                "check --server / FARPOINT_URL and that the server is running"
            ) from exc
        raise_for_problem(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise FarpointError(
                f"{method} {API_PREFIX}/{path.lstrip('/')} answered {response.status_code} "
                f"with something that is not JSON: {response.text[:200]!r}"
            ) from exc

    def _one(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        return model.model_validate(self._json(method, path, **kwargs))

    def _all(self, model: type[M], path: str, params: dict[str, Any] | None = None) -> list[M]:
        """Every item of a list endpoint, following `next_cursor` to the end."""
        items: list[M] = []
        seen: set[str] = set()
        cursor: str | None = None
        while True:
            query: dict[str, Any] = {**(params or {}), "limit": self.page_size}
            if cursor is not None:
                query["cursor"] = cursor
            page = self._json("GET", path, params=query)
            items.extend(model.model_validate(item) for item in page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items
            if cursor in seen:  # a server bug must not become an endless loop
                raise FarpointError(f"the server repeated the cursor {cursor!r} listing {path}")
            seen.add(cursor)

    def _versioned(self, ref: str, version: int | None, kind: str) -> tuple[str, int]:
        """`(name, version)` from `name@3` or `name` + `version`; latest when neither has one."""
        name, parsed = (ref, version) if version is not None else parse_ref(ref)
        if parsed is not None:
            return name, parsed
        versions = self._all(_Versioned, f"{kind}/{segment(name)}/versions")
        if not versions:
            raise error_for_status(404, f"{kind[:-1]} {name!r} has no versions yet")
        return name, max(v.version for v in versions)


class _Versioned(BaseModel):
    """Just enough of a dataset or model version to find the latest."""

    version: int
