"""SDK calls for the TUF image repository (docs/trust-delivery.md, "HTTP layout").

Reads return raw bytes: whoever uses them verifies them against a root they trust.
Writes send metadata signed on this machine; the server never signs for people.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
from tuf.api.exceptions import DownloadHTTPError
from tuf.ngclient import FetcherInterface  # type: ignore[attr-defined]  # tuf/sslib re-export without __all__

from farpoint.core.errors import NotFound
from farpoint.sdk._http import _Base, segment

__all__ = ["TUF_PREFIX", "SdkFetcher", "TufCalls"]

TUF_PREFIX = "tuf/image"
_JSON = {"Content-Type": "application/json"}


class TufCalls(_Base):
    # -- reads ----------------------------------------------------------------------------
    def tuf_metadata(self, name: str) -> bytes | None:
        """`root`-chain file `N.root.json`, or `timestamp.json` ...; None when absent (404)."""
        try:
            return self._request("GET", f"{TUF_PREFIX}/metadata/{segment(name)}").content
        except NotFound:
            return None

    def tuf_target(self, path: str) -> bytes:
        """The bytes of target `path` (such as `releases/3/model.onnx`), as the server holds."""
        quoted = "/".join(segment(part) for part in path.split("/"))
        return self._request("GET", f"{TUF_PREFIX}/targets/{quoted}").content

    def tuf_online_keys(self, prefer_next: bool = False) -> dict[str, str]:
        """The public PEMs of the server's online keys: snapshot, timestamp, director.

        With `prefer_next`, a role with a key made for a rotation gives that one instead.
        """
        answer: dict[str, Any] = self._json("GET", "tuf/online-keys")
        pems = {role: str(answer[role]) for role in ("snapshot", "timestamp", "director")}
        if prefer_next:
            pems.update({role: str(pem) for role, pem in (answer.get("next") or {}).items()})
        return pems

    def tuf_rotate_online_keys(self, roles: list[str]) -> dict[str, Any]:
        """Have the server make next keys for online `roles` (admin); a root must name them."""
        answer: dict[str, Any] = self._json("POST", "tuf/online-keys/rotate", json={"roles": roles})
        return answer

    def tuf_status(self) -> dict[str, Any]:
        """Which image-repository metadata the server holds, with versions and expiry."""
        answer: dict[str, Any] = self._json("GET", "tuf/status")
        return answer

    def tuf_root_chain(self) -> list[bytes]:
        """Every root the server holds, `1.root.json` first (empty before `trust init`)."""
        chain: list[bytes] = []
        while (data := self.tuf_metadata(f"{len(chain) + 1}.root.json")) is not None:
            chain.append(data)
        return chain

    # -- writes (offline-signed) ------------------------------------------------------------
    def put_tuf_root(self, data: bytes) -> None:
        """Upload a root signed offline (admin)."""
        self._request("PUT", f"{TUF_PREFIX}/root", content=data, headers=_JSON)

    def put_tuf_targets(self, data: bytes) -> None:
        """Upload the top-level targets signed offline (admin)."""
        self._request("PUT", f"{TUF_PREFIX}/targets", content=data, headers=_JSON)

    def put_trust_file(self, name: str, data: bytes) -> None:
        """Upload `bindings.json`, `policy.json` or `policies/<fleet>.json` (admin).

        The server takes it only when the current targets.json lists it by length and hash.
        """
        quoted = "/".join(segment(part) for part in name.split("/"))
        self._request("PUT", f"{TUF_PREFIX}/trust-files/{quoted}", content=data, headers=_JSON)

    def put_tuf_releases(self, data: bytes) -> None:
        """Upload `releases.json` signed by a release manager (mlops-engineer)."""
        self._request("PUT", f"{TUF_PREFIX}/releases", content=data, headers=_JSON)

    def put_model_signature(self, release_id: int, bundle: bytes) -> None:
        """Upload an OMS bundle over release `release_id`'s model (`releases/<id>/model.sig`)."""
        self._request(
            "PUT", f"{TUF_PREFIX}/release-files/{release_id}/model.sig", content=bundle,
            headers=_JSON,
        )  # fmt: skip

    def tuf_fetcher(self) -> SdkFetcher:
        """A `tuf.ngclient` fetcher that goes through this client (token, transport)."""
        return SdkFetcher(self._http)

    def tuf_metadata_url(self) -> str:
        return f"{self.base_url}/api/v1/{TUF_PREFIX}/metadata/"

    def tuf_targets_url(self) -> str:
        return f"{self.base_url}/api/v1/{TUF_PREFIX}/targets/"


class SdkFetcher(FetcherInterface):
    """Fetches for `tuf.ngclient.Updater` with the SDK's httpx client (bearer token)."""

    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def _fetch(self, url: str) -> Iterator[bytes]:
        response = self._http.send(self._http.build_request("GET", url), stream=True)
        if response.status_code != 200:
            response.close()
            raise DownloadHTTPError(
                f"GET {url} answered {response.status_code}", response.status_code
            )
        return _chunks(response)


def _chunks(response: httpx.Response) -> Iterator[bytes]:
    # Streamed, so ngclient's length limits stop an endless answer early.
    try:
        yield from response.iter_bytes()
    finally:
        response.close()
