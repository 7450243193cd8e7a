"""Cognito user pool ARNs and the issuer URL of their tokens (aws-contract.md §5.3); pure."""

from __future__ import annotations

import re

__all__ = ["USER_POOL_ARN", "cognito_issuer", "pool_id"]

USER_POOL_ARN = re.compile(r"arn:aws:cognito-idp:([a-z0-9-]+):(\d*):userpool/([\w-]+)")


def pool_id(pool_arn: str) -> str:
    match = USER_POOL_ARN.fullmatch(pool_arn)
    if match is None:
        raise ValueError(f"not a Cognito user pool ARN: {pool_arn!r}")
    return match[3]


def cognito_issuer(pool_arn: str) -> str:
    """``arn:aws:cognito-idp:{region}:{acct}:userpool/{poolId}`` -> the ``iss`` of the pool's
    tokens, ``https://cognito-idp.{region}.amazonaws.com/{poolId}``."""
    match = USER_POOL_ARN.fullmatch(pool_arn)
    if match is None:
        raise ValueError(f"not a Cognito user pool ARN: {pool_arn!r}")
    return f"https://cognito-idp.{match[1]}.amazonaws.com/{match[3]}"
