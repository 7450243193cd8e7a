"""The gateway's access-control settings, in the same shape for both config formats
(docs/security.md): SigV4 access keys (native ``iam:``, serverless.yml ``custom.portway.iam``), the
management endpoints' rule (``management:`` / ``custom.portway.management``), trusted proxies
(``trustedProxies:`` / ``custom.portway.trustedProxies``) and an API's resource policy (native
``resourcePolicy:``, serverless.yml ``provider.apiGateway.resourcePolicy``).

Every problem is reported with its location; a setting that cannot be enforced is an error, never
ignored (fail closed). Pure: no I/O imports (secrets named by ``secretAccessKeyEnv`` are read when
the gateway starts, :mod:`server.auth.iam`).
"""

from __future__ import annotations

from typing import Any

from server.auth.policy import Policy, PolicyError, parse_policy
from server.auth.resource_policy import ResourcePolicy, parse_networks, parse_resource_policy
from server.config.errors import Issues, loc
from server.config.model import LOOPBACK_NETWORKS, IamCredentialConfig, ManagementSettings

__all__ = ["parse_iam", "parse_management", "parse_resource_policy_at", "parse_trusted_proxies"]

_CREDENTIAL_KEYS = {
    "accessKeyId",
    "secretAccessKey",
    "secretAccessKeyEnv",
    "sessionToken",
    "user",
    "arn",
    "policy",
}
WIDE_NETWORK_NEEDS_IAM = (
    "the management endpoints accept callers beyond loopback only with a signature: set auth: iam "
    "(and configure iam.credentials), or keep allowNetworks on loopback"
)


def _policy(raw: Any, where: str, issues: Issues) -> Policy | None:
    document = {"Statement": raw} if isinstance(raw, list) else raw
    try:
        return parse_policy(document)
    except PolicyError as exc:
        issues.error(where, str(exc))
        return None


def parse_iam(raw: Any, where: str, issues: Issues) -> tuple[IamCredentialConfig, ...]:
    """``{credentials: [{accessKeyId, secretAccessKey | secretAccessKeyEnv, sessionToken?, user?,
    arn?, policy}]}``."""
    if raw is None:
        return ()
    if not isinstance(raw, dict) or set(raw) - {"credentials"}:
        issues.error(where, "iam takes one key, credentials (a list of access keys)")
        return ()
    entries = raw.get("credentials")
    if not isinstance(entries, list):
        issues.error(loc(where, "credentials"), "a list of access keys")
        return ()
    found: list[IamCredentialConfig] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        at = loc(loc(where, "credentials"), index)
        if not isinstance(entry, dict):
            issues.error(at, "an access key is an object with accessKeyId, secretAccessKeyEnv and policy")
            continue
        unknown = sorted(set(entry) - _CREDENTIAL_KEYS)
        if unknown:
            issues.error(
                at, f"unknown keys {', '.join(unknown)} (known: {', '.join(sorted(_CREDENTIAL_KEYS))})"
            )
            continue
        key_id, secret, secret_env = (
            entry.get("accessKeyId"),
            entry.get("secretAccessKey"),
            entry.get("secretAccessKeyEnv"),
        )
        if not isinstance(key_id, str) or not key_id.isalnum():
            issues.error(loc(at, "accessKeyId"), "an access key id (letters and digits)")
            continue
        if key_id in seen:
            issues.error(loc(at, "accessKeyId"), f"access key {key_id!r} is declared twice")
            continue
        seen.add(key_id)
        if (secret is None) == (secret_env is None) or not isinstance(secret or secret_env, str):
            issues.error(
                at,
                "give exactly one of secretAccessKeyEnv (preferred: an environment variable name) "
                "and secretAccessKey",
            )
            continue
        if "policy" not in entry:
            issues.error(loc(at, "policy"), "every access key needs a policy (what it may invoke)")
            continue
        policy = _policy(entry["policy"], loc(at, "policy"), issues)
        token, user, arn = entry.get("sessionToken"), entry.get("user", ""), entry.get("arn", "")
        if not all(isinstance(v, str) for v in (user, arn)) or (
            token is not None and not isinstance(token, str)
        ):
            issues.error(at, "sessionToken, user and arn are strings")
            continue
        if arn and not arn.startswith("arn:"):
            issues.error(loc(at, "arn"), f"not an ARN: {arn!r}")
            continue
        if policy is not None:
            found.append(IamCredentialConfig(key_id, policy, secret, secret_env, token, user, arn))
    return tuple(found)


def _networks(raw: Any, where: str, issues: Issues) -> tuple[str, ...] | None:
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        issues.error(where, "a list of CIDRs (10.0.0.0/8, 2001:db8::/32) or addresses")
        return None
    try:
        parse_networks(raw)
    except ValueError as exc:
        issues.error(where, str(exc))
        return None
    return tuple(raw)


def _loopback_only(networks: tuple[str, ...]) -> bool:
    loopback = parse_networks(LOOPBACK_NETWORKS)
    for network in parse_networks(networks):
        inside = any(
            network.version == allowed.version and network.subnet_of(allowed)  # type: ignore[arg-type]
            for allowed in loopback
        )
        if not inside:
            return False
    return True


def parse_management(raw: Any, where: str, issues: Issues, *, has_keys: bool) -> ManagementSettings:
    """``{auth: iam | none, allowNetworks: [...]}``; loopback and no signature by default (with
    access keys configured, ``auth`` defaults to ``iam``)."""
    if raw is None:
        return ManagementSettings(auth="iam" if has_keys else "none")
    if not isinstance(raw, dict) or set(raw) - {"auth", "allowNetworks"}:
        issues.error(where, "management takes auth (iam or none) and allowNetworks (CIDRs)")
        return ManagementSettings()
    auth = raw.get("auth", "iam" if has_keys else "none")
    if auth not in ("iam", "none"):
        issues.error(loc(where, "auth"), f"{auth!r}: use iam or none")
        return ManagementSettings()
    if auth == "iam" and not has_keys:
        issues.error(loc(where, "auth"), "auth: iam needs at least one access key in iam.credentials")
    networks: tuple[str, ...] = LOOPBACK_NETWORKS
    if "allowNetworks" in raw:
        parsed = _networks(raw["allowNetworks"], loc(where, "allowNetworks"), issues)
        if parsed is None:
            return ManagementSettings()
        networks = parsed
    if auth == "none" and not _loopback_only(networks):
        issues.error(loc(where, "allowNetworks"), WIDE_NETWORK_NEEDS_IAM)
    return ManagementSettings(auth=str(auth), allow_networks=networks)


def parse_trusted_proxies(raw: Any, where: str, issues: Issues) -> tuple[str, ...]:
    if raw is None:
        return ()
    return _networks(raw, where, issues) or ()


def parse_resource_policy_at(raw: Any, where: str, issues: Issues) -> ResourcePolicy | None:
    """A resource policy document or statement list; None (and an error) when it cannot be
    enforced."""
    if raw in (None, [], {}):
        return None
    try:
        return parse_resource_policy(raw)
    except PolicyError as exc:
        issues.error(where, str(exc))
        return None
