"""The validated, immutable gateway definition every loader produces.

Both config formats (Portway's native YAML and a Serverless Framework v3 ``serverless.yml``) are
parsed into these frozen dataclasses; nothing downstream knows which format was used. Everything
is checked once at load time so that nothing is compiled or validated per request.

Pure core: imports no I/O library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

from server.auth.policy import Policy
from server.auth.resource_policy import ResourcePolicy

__all__ = [
    "DEFAULT_TIMEOUT_MS",
    "ApiConfig",
    "ApiKind",
    "AuthorizerConfig",
    "AuthorizerType",
    "CACHE_TTL_DEFAULT",
    "CACHE_TTL_MAX",
    "CacheControlStrategy",
    "CacheSettings",
    "ClusterSettings",
    "GatewayConfig",
    "GatewayResponseConfig",
    "CorsConfig",
    "IamCredentialConfig",
    "LOOPBACK_NETWORKS",
    "ManagementSettings",
    "IntegrationConfig",
    "IntegrationResponseConfig",
    "IntegrationType",
    "Isolation",
    "MockResponse",
    "RequestValidation",
    "RouteConfig",
    "StageConfig",
    "ThrottleSettings",
    "UsagePlanConfig",
    "ApiKeyConfig",
    "PlanStage",
    "QuotaSettings",
    "RouteCache",
    "WebSocketSettings",
    "frozen_map",
]

DEFAULT_TIMEOUT_MS = 29_000
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
DEFAULT_STAGE = "$default"


def frozen_map(data: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(data or {}))


class ApiKind(StrEnum):
    REST = "REST"  # API Gateway v1: /{stage}/{path}, REST v1 event
    HTTP = "HTTP"  # API Gateway v2 HTTP API: payload 2.0 (or 1.0), $default stage has no segment
    WEBSOCKET = "WEBSOCKET"


class IntegrationType(StrEnum):
    PYTHON = "PYTHON"  # a Python handler called with Lambda's event/context (AWS_PROXY semantics)
    HTTP_PROXY = "HTTP_PROXY"
    HTTP = "HTTP"
    MOCK = "MOCK"
    AWS_PROXY = "AWS_PROXY"  # a real Lambda function through aiobotocore
    AWS = "AWS"


class Isolation(StrEnum):
    """Where a Python handler runs. See docs/integrations.md for why ``process`` is the default."""

    PROCESS = "process"
    INPROCESS = "inprocess"


@dataclass(frozen=True, slots=True)
class MockResponse:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=frozen_map)
    body: str = ""


@dataclass(frozen=True, slots=True)
class IntegrationResponseConfig:
    """One integration response of a non-proxy integration (reference §7.5).

    ``pattern``: a regex matched against the backend status (HTTP, MOCK) as a whole string;
    ``None`` marks the default response. ``parameters``: ``method.response.header.X`` -> source
    (``integration.response.header.Y``, ``integration.response.body[.JSONPath]``, ``'static'``,
    ``context.x``, ``stageVariables.x``). ``templates``: content type -> VTL template.
    """

    status: int
    pattern: str | None = None
    parameters: Mapping[str, str] = field(default_factory=frozen_map)
    templates: Mapping[str, str] = field(default_factory=frozen_map)
    content_handling: str | None = None  # CONVERT_TO_TEXT / CONVERT_TO_BINARY; None: passthrough


@dataclass(frozen=True, slots=True)
class IntegrationConfig:
    """How a route reaches its backend.

    Attributes:
        type: the integration type.
        timeout_ms: integration timeout (AWS: 50..29000, default 29000); a breach answers 504.
        handler: ``module.function`` for PYTHON.
        code_dir: folder the handler module is imported from (PYTHON).
        function_name: Lambda function name seen by the handler's ``context`` (PYTHON, AWS_PROXY).
        environment: environment variables of the function (PYTHON; process isolation only
            isolates them per function).
        isolation: PYTHON execution mode.
        workers: worker processes per function (process isolation).
        payload_format: ``1.0`` (REST v1 / HTTP API 1.0 event) or ``2.0`` (HTTP API 2.0 event).
        uri: backend URL for HTTP/HTTP_PROXY; may hold ``{name}`` path parameters (``{proxy}``) and
            ``${stageVariables.name}``.
        http_method: backend method for HTTP/HTTP_PROXY (``ANY`` = the client's method).
        mock: the fixed MOCK response.
        memory_mb: reported by ``context.memory_limit_in_mb``; also the worker's memory limit.
        runtime: the function's Lambda runtime (``python3.12``): the interpreter its workers use
            when installed (PYTHON, process isolation).
        layers: local layer folders; each one's ``python/`` is on ``sys.path`` as Lambda's
            ``/opt/python`` (PYTHON).
        requirements: the ``requirements.txt`` whose packages the function imports
            (serverless-python-requirements), installed before serving (PYTHON, process isolation).
        prestart: workers started before the gateway serves (``provisionedConcurrency``); 0 starts
            them on first use (process isolation). The pool has ``max(workers, prestart)`` slots.
        reserved_concurrency: at most this many invocations at once, queued ones included
            (``reservedConcurrency``; it also caps the pool); beyond it a call is refused with
            Lambda's ``TooManyRequestsException`` (429). ``None``: no limit but the queue's.
    """

    type: IntegrationType
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    handler: str | None = None
    code_dir: Path | None = None
    function_name: str = ""
    environment: Mapping[str, str] = field(default_factory=frozen_map)
    isolation: Isolation = Isolation.PROCESS
    workers: int = 1
    payload_format: str = "1.0"
    uri: str | None = None
    http_method: str = "ANY"
    mock: MockResponse | None = None
    memory_mb: int = 1024
    runtime: str | None = None
    layers: tuple[Path, ...] = ()
    requirements: Path | None = None
    prestart: int = 0
    reserved_concurrency: int | None = None
    # Non-proxy integrations (HTTP, MOCK; docs/transform.md): request templates by content type,
    # what happens without one (WHEN_NO_MATCH, WHEN_NO_TEMPLATES, NEVER), request parameter
    # mapping (target -> source) and the integration responses.
    request_templates: Mapping[str, str] = field(default_factory=frozen_map)
    passthrough: str = "WHEN_NO_MATCH"
    request_parameters: Mapping[str, str] = field(default_factory=frozen_map)
    responses: tuple[IntegrationResponseConfig, ...] = ()
    # PYTHON only: a Lambda non-proxy (custom) integration (serverless ``integration: lambda``):
    # the event comes from the request template, the result goes through integration responses.
    custom: bool = False
    # Request body conversion (reference §7.6): CONVERT_TO_TEXT (binary -> base64 text) or
    # CONVERT_TO_BINARY (base64 text -> bytes); None passes the body through.
    content_handling: str | None = None
    # HTTP APIs: response parameter mapping by status code (``overwrite:header.x`` -> value);
    # request mapping (``append:querystring.y`` -> value) is in ``request_parameters``.
    response_mapping: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: MappingProxyType({}))
    # AWS_PROXY: the function's client region (an ARN's region wins) and endpoint (LocalStack,
    # moto); None: the gateway's region, and PORTWAY_AWS_ENDPOINT_URL or AWS's own endpoint.
    aws_region: str | None = None
    aws_endpoint_url: str | None = None

    @property
    def transforms(self) -> bool:
        """Whether the transform phase has anything to do for this integration."""
        return bool(
            self.request_templates
            or self.request_parameters
            or self.responses
            or self.passthrough != "WHEN_NO_MATCH"
        )


class AuthorizerType(StrEnum):
    """How a route authenticates its callers (aws-contract.md §5). One implementation per value in
    :mod:`server.auth.factory`."""

    TOKEN = "TOKEN"  # REST Lambda authorizer on one header (type TOKEN)
    REQUEST = "REQUEST"  # Lambda authorizer on several identity sources (REST, HTTP API, WebSocket)
    JWT = "JWT"  # HTTP API JWT authorizer (OIDC issuer + audiences)
    COGNITO_USER_POOLS = "COGNITO_USER_POOLS"  # REST Cognito user pool authorizer
    AWS_IAM = "AWS_IAM"  # SigV4 against the gateway's configured access keys


@dataclass(frozen=True, slots=True)
class AuthorizerConfig:
    """One authorizer, shared by every route that names it (its result cache is shared too).

    Only the fields of its ``type`` are meaningful; loaders check them. Identity sources are kept
    in AWS's own syntax for the API kind: ``method.request.header.Authorization`` (REST),
    ``$request.header.Authorization`` (HTTP API), ``route.request.header.Auth`` (WebSocket).
    """

    name: str
    type: AuthorizerType
    # Lambda authorizers (TOKEN / REQUEST): the handler that decides, run like any function.
    function: IntegrationConfig | None = None
    identity_sources: tuple[str, ...] = ()
    identity_validation: str | None = None  # TOKEN: regex on the token; Cognito: regex on aud
    ttl_s: int = 300  # result cache; 0 = off; AWS's maximum is 3600
    payload_format: str = "1.0"  # HTTP API Lambda authorizers: "1.0" or "2.0"
    simple_responses: bool = False  # HTTP API payload 2.0: {"isAuthorized": bool, "context": {...}}
    # JWT / Cognito
    issuer: str | None = None
    audiences: tuple[str, ...] = ()
    jwks_uri: str | None = None  # None: from the issuer's OpenID discovery document
    algorithms: tuple[str, ...] = ("RS256", "RS384", "RS512")  # pinned; RSA only, as AWS
    user_pool_arns: tuple[str, ...] = ()


class CacheControlStrategy(StrEnum):
    """What a ``Cache-Control: max-age=0`` from a caller not allowed to invalidate gets
    (AWS's ``unauthorizedCacheControlHeaderStrategy``, aws-contract.md §4)."""

    FAIL_WITH_403 = "FAIL_WITH_403"
    SUCCEED_WITH_RESPONSE_HEADER = "SUCCEED_WITH_RESPONSE_HEADER"
    SUCCEED_WITHOUT_RESPONSE_HEADER = "SUCCEED_WITHOUT_RESPONSE_HEADER"


CACHE_TTL_DEFAULT = 300
CACHE_TTL_MAX = 3600


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """A stage's response cache (aws-contract.md §4; REST APIs only).

    ``ttl_s``: 0 switches caching off, at most :data:`CACHE_TTL_MAX`. ``require_authorization``
    and ``unauthorized_strategy``: who may invalidate an entry with ``Cache-Control: max-age=0``
    (AWS's ``requireAuthorizationForCacheControl`` / ``unauthorizedCacheControlHeaderStrategy``).
    """

    enabled: bool = True
    ttl_s: int = CACHE_TTL_DEFAULT
    require_authorization: bool = True
    unauthorized_strategy: CacheControlStrategy = CacheControlStrategy.SUCCEED_WITH_RESPONSE_HEADER


@dataclass(frozen=True, slots=True)
class RouteCache:
    """One method's cache override (AWS's ``methodSettings`` ``caching/*`` plus the
    integration's ``cacheKeyParameters``). ``None`` fields inherit the stage's; ``enabled``
    None means the stage's rule (GET methods only). ``key_parameters``:
    ``method.request.querystring.x``, ``method.request.header.y``, ``method.request.path.z``."""

    enabled: bool | None = None
    ttl_s: int | None = None
    key_parameters: tuple[str, ...] = ()
    require_authorization: bool | None = None
    unauthorized_strategy: CacheControlStrategy | None = None


@dataclass(frozen=True, slots=True)
class RequestValidation:
    """A REST method's request validator (reference §7.1), checked by the ``validate`` phase.

    ``body`` / ``parameters``: what the validator checks (AWS's ``all``, ``body-only``,
    ``params-only``). ``required``: the method's required request parameters in AWS's spelling
    (``method.request.querystring.q``, ``method.request.header.X-Id``, ``method.request.path.id``).
    ``models``: content type -> JSON Schema (draft 4) of the body; ``$default`` is the fallback.
    A schema may ``$ref`` the API's named models (:attr:`ApiConfig.models`).
    WebSocket routes: ``models`` are keyed by the value of ``selection_expression`` (the route's
    model selection expression; ``$default`` is the fallback and the only key without one).
    """

    body: bool = True
    parameters: bool = True
    required: tuple[str, ...] = ()
    models: Mapping[str, Mapping[str, object]] = field(default_factory=lambda: MappingProxyType({}))
    selection_expression: str = ""


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """One method on one resource path (REST) or one route key (HTTP/WebSocket).

    ``path`` is the resource path relative to the API (``/pets/{id}``, ``/{proxy+}``); for the
    HTTP API catch-all route it is ``$default``. ``method`` is upper case or ``ANY``.
    WebSocket routes have an empty ``method`` and their route key as ``path`` (``$connect``,
    ``sendMessage``).
    """

    method: str
    path: str
    integration: IntegrationConfig
    api_key_required: bool = False
    # WebSocket: a route response (key ``$default``) makes the route two-way: the integration's
    # output is sent back to the client (aws-contract.md §1.3). Without one, a route is one-way.
    route_response: bool = False
    # None: no authorization (AWS's NONE). WebSocket APIs authorize on ``$connect`` only.
    authorizer: AuthorizerConfig | None = None
    authorization_scopes: tuple[str, ...] = ()  # JWT / Cognito: any one of them is enough
    # REST: the request validator (server/stages/validate.py); WebSocket: the route's models,
    # chosen by the API's model selection expression. None: nothing is validated.
    validation: RequestValidation | None = None
    cache: RouteCache | None = None  # the stage cache's per-method override (REST)

    @property
    def route_key(self) -> str:
        return self.path if self.path == "$default" or not self.method else f"{self.method} {self.path}"


@dataclass(frozen=True, slots=True)
class ThrottleSettings:
    """A token bucket (aws-contract.md §3.1): ``rate`` requests per second, at most ``burst`` at once."""

    rate: float
    burst: int


@dataclass(frozen=True, slots=True)
class WebSocketSettings:
    """Per-API WebSocket limits; defaults are AWS's (aws-contract.md §1.5). ``None`` switches a timer off,
    which AWS cannot do.

    Attributes:
        max_frame_bytes: a larger frame closes the connection with 1009.
        max_message_bytes: a larger (reassembled) message closes the connection with 1009; also the
            largest ``@connections`` POST body (413 above it).
        binary_frames: AWS closes on a binary frame from the client with 1003; ``True`` accepts them
            and passes them base64-encoded (``isBase64Encoded: true``).
        idle_timeout_s: no message from the client for this long closes the connection (1001).
        max_lifetime_s: connection age limit (1001).
        ping_interval_s: server pings (keep-alive through proxies; a missing pong closes).
        send_buffer_bytes: outgoing bytes buffered per connection before ``@connections`` answers
            429 ``LimitExceededException``: a slow reader never grows memory without bound.
        max_inflight: messages of one connection processed at once. 1 (default) keeps a connection's
            messages in order; more lets a slow route run concurrently (AWS does, unordered).
            Reading pauses beyond it.
        flood_refusals: a connection whose messages are refused by throttling or quota this many
            times within ``flood_window_s`` is closed with 1008 (policy violation); ``None`` never
            closes (refused messages only get the error frame).
        connection_throttle: a token bucket per connection for its messages (every route), kept
            in the node that holds the socket (no store call, exact): one client cannot use a
            route's or a plan's whole allowance. AWS has no per-connection limit.
        control_frame_throttle: a token bucket per connection for the ping and pong frames it
            sends; an empty bucket closes the connection with 1008 (a ping flood costs the event
            loop work for every neighbour). ``None``: unlimited.
    """

    max_frame_bytes: int = 32 * 1024
    max_message_bytes: int = 128 * 1024
    binary_frames: bool = False
    idle_timeout_s: float | None = 600.0
    max_lifetime_s: float | None = 7200.0
    ping_interval_s: float | None = 30.0
    send_buffer_bytes: int = 1024 * 1024
    max_inflight: int = 1
    flood_refusals: int | None = 100
    flood_window_s: float = 10.0
    connection_throttle: ThrottleSettings | None = None
    control_frame_throttle: ThrottleSettings | None = ThrottleSettings(rate=10.0, burst=50)


def _no_throttles() -> Mapping[str, ThrottleSettings]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class StageConfig:
    """One stage. ``throttle``: the stage default (AWS methodSettings ``*/*``); ``method_throttles``:
    per route key (``"GET /pets/{id}"``, as :attr:`RouteConfig.route_key`)."""

    name: str
    variables: Mapping[str, str] = field(default_factory=frozen_map)
    throttle: ThrottleSettings | None = None
    method_throttles: Mapping[str, ThrottleSettings] = field(default_factory=_no_throttles)
    cache: CacheSettings | None = None  # None: no response cache on this stage (zero cost)


@dataclass(frozen=True, slots=True)
class QuotaSettings:
    """A usage plan's quota (aws-contract.md §3.3): ``limit`` requests per API key per ``period``
    (``DAY``, ``WEEK`` or ``MONTH``, UTC calendar periods, see :mod:`server.throttle.quota`);
    ``offset`` requests are subtracted in the period the plan was created in."""

    limit: int
    period: str = "DAY"
    offset: int = 0


@dataclass(frozen=True, slots=True)
class PlanStage:
    """One API stage of a usage plan: ``api_id`` and ``stage`` name, and per-route throttles
    inside the plan (route key as :attr:`RouteConfig.route_key`; AWS's ``/pets/GET``)."""

    api_id: str
    stage: str
    method_throttles: Mapping[str, ThrottleSettings] = field(default_factory=_no_throttles)


@dataclass(frozen=True, slots=True)
class UsagePlanConfig:
    """A usage plan (aws-contract.md §3.3): who may call which API stages, how fast and how much.

    ``throttle`` and ``quota`` apply per API key, summed across every stage of the plan.
    ``created`` (epoch seconds) places the quota ``offset``; the registry sets it when the plan
    is first stored.
    """

    id: str
    name: str
    stages: tuple[PlanStage, ...] = ()
    throttle: ThrottleSettings | None = None
    quota: QuotaSettings | None = None
    description: str = ""
    created: float | None = None

    def stage_of(self, api_id: str, stage: str) -> PlanStage | None:
        for entry in self.stages:
            if entry.api_id == api_id and entry.stage == stage:
                return entry
        return None


@dataclass(frozen=True, slots=True)
class ApiKeyConfig:
    """An API key declared in the configuration. ``value`` None: generated at the first start
    (logged once; only its hash is stored). ``plans``: usage plan ids. ``enabled`` applies when
    the key is created; a runtime enable/disable is kept across restarts."""

    name: str
    value: str | None = None
    enabled: bool = True
    plans: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class GatewayResponseConfig:
    """A customised gateway response of a REST API (reference §2.6; AWS::ApiGateway::GatewayResponse).

    ``status``: None keeps the type's own status. ``headers``: response header -> source, a quoted
    static value (``'*'``), ``method.request.{header|querystring|path}.x``, ``context.x`` or
    ``stageVariables.x``. ``templates``: content type -> template (``$context.*``,
    ``$stageVariables.*`` substituted; not VTL); none: AWS's ``{"message":$context.error.messageString}``.
    """

    response_type: str
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=frozen_map)
    templates: Mapping[str, str] = field(default_factory=frozen_map)


@dataclass(frozen=True, slots=True)
class CorsConfig:
    """An HTTP API's CORS configuration (AWS's ``CorsConfiguration``, reference §9): the gateway
    answers preflights itself and sets these headers on every response, ignoring the backend's."""

    allow_origins: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False


def _no_gateway_responses() -> Mapping[str, GatewayResponseConfig]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """One API (REST, HTTP or WebSocket).

    Attributes:
        id: a short id (like AWS's ``restApiId``) used in events and ARNs.
        base_path: optional first path segment(s) after the stage (``v1``), the way AWS custom
            domain base-path mappings place several APIs (versions) under one host.
        binary_media_types: MIME types (``*/*`` allowed) treated as binary (aws-contract.md §7.6).
        route_selection_expression: WebSocket APIs: how a message picks its route (aws-contract.md §1.2).
    """

    name: str
    id: str
    kind: ApiKind
    stages: tuple[StageConfig, ...]
    routes: tuple[RouteConfig, ...]
    base_path: str = ""
    binary_media_types: tuple[str, ...] = ()
    max_body_bytes: int = 10 * 1024 * 1024
    route_selection_expression: str = "$request.body.action"
    websocket: WebSocketSettings = field(default_factory=WebSocketSettings)
    # "open" / "closed" when the throttling store is unreachable; None: the gateway's setting.
    throttle_failure: str | None = None
    # An IAM resource policy evaluated in the authorize phase (server/auth/resource_policy.py);
    # REST and HTTP APIs. None: no resource policy.
    resource_policy: ResourcePolicy | None = None
    # Where the usage-plan key of an ``apiKeyRequired`` route comes from: the ``x-api-key``
    # header (HEADER) or the Lambda authorizer's ``usageIdentifierKey`` (AUTHORIZER).
    api_key_source: str = "HEADER"
    # REST APIs: customised gateway responses by response type (server/gateway_responses.py).
    gateway_responses: Mapping[str, GatewayResponseConfig] = field(default_factory=_no_gateway_responses)
    # Named JSON Schema (draft 4) models that request models may $ref
    # (https://apigateway.amazonaws.com/restapis/{apiId}/models/{Name}, or just the name).
    models: Mapping[str, Mapping[str, object]] = field(default_factory=lambda: MappingProxyType({}))
    # HTTP APIs: CORS answered by the gateway (server/cors.py); None: no CORS configuration.
    cors: CorsConfig | None = None
    # AWS's accessLogSettings.format for this API's access lines (server/access_format.py);
    # None: the gateway's (``--access-log-format``) or the console line.
    access_log_format: str | None = None

    def stage(self, name: str) -> StageConfig | None:
        for stage in self.stages:
            if stage.name == name:
                return stage
        return None


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """How nodes sharing one Redis find each other (docs/websockets.md, "Many nodes").

    A node refreshes its liveness key every ``heartbeat_s``; it is dead once the key is older than
    ``node_ttl_s``. Survivors check every ``reaper_interval_s``, so a dead node's connections get
    their ``$disconnect`` within ``node_ttl_s + reaper_interval_s``. ``rpc_timeout_s`` bounds a
    cross-node ``@connections`` call.
    """

    heartbeat_s: float = 2.0
    node_ttl_s: float = 6.0
    reaper_interval_s: float = 2.0
    rpc_timeout_s: float = 2.0


@dataclass(frozen=True, slots=True)
class IamCredentialConfig:
    """An access key the gateway accepts SigV4 signatures from (``aws_iam`` routes, the
    ``@connections`` API), with the identity-based policy that decides what it may invoke.

    The secret is given inline (``secret_access_key``) or, preferably, as the name of an
    environment variable read when the gateway starts (``secret_env``). ``user``/``arn`` appear in
    the event's ``requestContext.identity``.
    """

    access_key_id: str
    policy: Policy
    secret_access_key: str | None = None
    secret_env: str | None = None
    session_token: str | None = None
    user: str = ""
    arn: str = ""


# Loopback only: the management endpoints (@connections, @channels, @broadcast, /@metrics) are
# for the gateway's own handlers and local tooling unless the operator says otherwise.
LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")


@dataclass(frozen=True, slots=True)
class ManagementSettings:
    """Who may call the management endpoints (docs/security.md).

    ``allow_networks``: peer addresses (CIDRs) accepted at all; ``auth``: ``iam`` requires a valid
    SigV4 signature with ``execute-api:ManageConnections`` on ``@connections``/``@channels``/
    ``@broadcast`` (``/@metrics`` is network-only), ``none`` trusts the network alone, which the
    loaders allow for loopback only.
    """

    auth: str = "none"
    allow_networks: tuple[str, ...] = LOOPBACK_NETWORKS


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """The whole definition: every API with its stages and routes.

    ``warnings`` are ``"location: message"`` notes about things the loader ignored or could not
    check (an unsupported serverless event type, a handler module not found yet); they never stop a
    load.
    """

    apis: tuple[ApiConfig, ...]
    source: Path | None = None
    region: str = "us-east-1"
    account_id: str = "123456789012"
    warnings: tuple[str, ...] = ()
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    # Account-level bucket (AWS's default 10000 rps, burst 5000) and what to do when the store
    # holding the buckets is unreachable: "open" admits, "closed" answers 429.
    # None switches the account bucket off (AWS cannot): a request no other level applies to then
    # costs no store round trip at all.
    account_throttle: ThrottleSettings | None = field(default_factory=lambda: ThrottleSettings(10000.0, 5000))
    throttle_failure: str = "open"
    usage_plans: tuple[UsagePlanConfig, ...] = ()
    api_keys: tuple[ApiKeyConfig, ...] = ()
    # X-RateLimit-Limit/Remaining/Reset on keyed and throttled responses (AWS sends none).
    rate_limit_headers: bool = False
    # Native ``aws: {endpointUrl}``: every AWS integration's endpoint unless it names its own.
    aws_endpoint_url: str | None = None
    # SigV4 access keys (AWS_IAM routes, @connections), the management endpoints' access rule,
    # and the proxies whose X-Forwarded-For is believed (resource policies' aws:SourceIp).
    iam_credentials: tuple[IamCredentialConfig, ...] = ()
    management: ManagementSettings = field(default_factory=ManagementSettings)
    trusted_proxies: tuple[str, ...] = ()
    # serverless-offline's custom.serverless-offline.reloadHandler: serve as with --reload.
    reload_handler: bool = False
