"""Which API and stage a request path belongs to.

AWS gives every API its own host name; Portway serves all of them on one listener, so the URL
decides (docs/configuration.md, "URL layout"):

* REST and WebSocket APIs, and HTTP APIs on a named stage: ``/{stage}/{basePath}/{path}``. An
  API's optional ``basePath`` (``v1``) plays the role of an AWS custom-domain base-path mapping, so
  several APIs (versions) share a stage name; the longest matching base path wins and the empty
  base path is the catch-all.
* HTTP APIs on the ``$default`` stage: ``/{path}`` with no stage segment, as on AWS. Named stages
  are tried first.

Pure core: imports no I/O library.
"""

from __future__ import annotations

from dataclasses import dataclass

from routes.table import RouteTable
from server.config.model import DEFAULT_STAGE, ApiConfig, ApiKind, GatewayConfig, StageConfig

__all__ = ["ApiDispatcher", "Dispatch"]


@dataclass(slots=True)  # hot path: plain (non-frozen) init is cheaper
class Dispatch:
    api: ApiConfig
    stage: StageConfig
    table: RouteTable
    path: str  # API-relative path (base path removed), still percent-encoded, starts with "/"
    stage_prefix: str  # "/{stage}", or "" for an HTTP API's $default stage (base path not included)


@dataclass(frozen=True, slots=True)
class _Mount:
    api: ApiConfig
    stage: StageConfig
    table: RouteTable
    base: tuple[str, ...]


class ApiDispatcher:
    """Index of every (stage, base path) mount of HTTP-style APIs, and of WebSocket APIs."""

    def __init__(self, config: GatewayConfig) -> None:
        self._http: dict[str, list[_Mount]] = {}
        self._default: list[_Mount] = []
        self._ws: dict[str, list[_Mount]] = {}
        for api in config.apis:
            table = RouteTable(api.routes, http_api=api.kind is ApiKind.HTTP)
            base = tuple(s for s in api.base_path.strip("/").split("/") if s)
            for stage in api.stages:
                mount = _Mount(api, stage, table, base)
                if api.kind is ApiKind.WEBSOCKET:
                    self._ws.setdefault(stage.name, []).append(mount)
                elif stage.name == DEFAULT_STAGE:
                    self._default.append(mount)
                else:
                    self._http.setdefault(stage.name, []).append(mount)
        for mounts in (*self._http.values(), *self._ws.values(), self._default):
            # Longest base path first: the most specific mapping wins.
            mounts.sort(key=lambda m: len(m.base), reverse=True)
            seen: set[tuple[str, ...]] = set()
            for mount in mounts:
                if mount.base in seen:
                    raise ValueError(
                        f"API {mount.api.name!r}: stage {mount.stage.name!r} with base path "
                        f"{'/'.join(mount.base) or '(none)'!r} is already used by another API"
                    )
                seen.add(mount.base)

    @property
    def has_rest(self) -> bool:
        return any(m.api.kind is ApiKind.REST for ms in self._http.values() for m in ms)

    @property
    def has_default_stage(self) -> bool:
        return bool(self._default)

    def resolve(self, raw_path: str) -> Dispatch | None:
        """Map a raw request path to an HTTP-style API mount, or None.

        Empty segments before the stage and right after it are skipped, as AWS does (recorded:
        ``//stage/x`` and ``/stage//x`` both route ``/x``; docs/aws-contract.md, "Slashes").
        """
        segments = raw_path.lstrip("/").split("/")
        if segments[0] in self._http:
            found = self._pick(self._http[segments[0]], _skip_empty(segments[1:]), "/" + segments[0])
            if found is not None:
                return found
        return self._pick(self._default, segments, "")

    def resolve_websocket(self, raw_path: str) -> Dispatch | None:
        """A WebSocket API is served at exactly ``/{stage}`` (plus its base path, if any)."""
        segments = [s for s in raw_path.split("/") if s]
        if not segments or segments[0] not in self._ws:
            return None
        for mount in self._ws[segments[0]]:
            if tuple(segments[1:]) == mount.base:
                return Dispatch(mount.api, mount.stage, mount.table, "/", "/" + segments[0])
        return None

    @staticmethod
    def _pick(mounts: list[_Mount], segments: list[str], stage_prefix: str) -> Dispatch | None:
        for mount in mounts:
            n = len(mount.base)
            if tuple(segments[:n]) == mount.base:
                rest = "/" + "/".join(segments[n:])
                return Dispatch(mount.api, mount.stage, mount.table, rest, stage_prefix)
        return None


def _skip_empty(segments: list[str]) -> list[str]:
    """``["", "", "x", ""]`` -> ``["x", ""]``: leading empty segments only (``/x//y/`` keeps its own)."""
    i = 0
    while i < len(segments) - 1 and segments[i] == "":
        i += 1
    return segments[i:]
