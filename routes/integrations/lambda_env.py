"""The environment of a worker process: Lambda's, never the gateway's own.

A worker does not inherit the gateway's environment (which holds ``PORTWAY_ADMIN_TOKEN``,
``PORTWAY_REDIS_URL`` and whatever else the operator's shell has). It gets, in this order, later
entries winning:

1. what the operator passes through on purpose: AWS credential and endpoint variables (so boto3
   in a handler reaches the same account or local endpoint as the operator's shell), ``HOME``
   (boto3 finds ``~/.aws`` there), and the names given with ``--pass-env`` / ``PORTWAY_PASS_ENV``
   (never a ``PORTWAY_*`` name: gateway settings are not for handlers);
2. placeholder credentials when no credentials were passed (Lambda always provides some, and
   code that signs requests fails without any);
3. the provider's and the function's ``environment``;
4. Lambda's reserved variables, which a function cannot override on Lambda either.

Pure: takes the gateway's environment as an argument.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping

__all__ = ["PASS_THROUGH", "lambda_environment", "pass_env_names"]

# Read by boto3/botocore; passing them keeps handlers' AWS calls working as in the operator's shell.
PASS_THROUGH = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CA_BUNDLE",
    "HOME",
)
_PASS_THROUGH_PREFIXES = ("AWS_ENDPOINT_URL",)  # AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>
_GATEWAY_PREFIX = "PORTWAY_"
_PLACEHOLDER_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "PORTWAYLOCAL", "AWS_SECRET_ACCESS_KEY": "portway-local"}


def pass_env_names(option: Iterable[str], setting: str | None) -> tuple[str, ...]:
    """``--pass-env A --pass-env B`` plus ``PORTWAY_PASS_ENV=C,D``; gateway settings are refused."""
    names = [*option, *(setting or "").split(",")]
    cleaned = dict.fromkeys(name.strip() for name in names if name.strip())
    refused = [name for name in cleaned if name.startswith(_GATEWAY_PREFIX)]
    if refused:
        raise ValueError(f"gateway settings are never passed to handlers: {', '.join(refused)}")
    return tuple(cleaned)


def lambda_environment(
    gateway_env: Mapping[str, str],
    *,
    handler: str,
    task_root: str,
    runtime_dir: str,
    name: str,
    region: str,
    memory_mb: int,
    environment: Mapping[str, str] | None,
    pass_env: Iterable[str] = (),
    python_path: Iterable[str] = (),
    python_version: str | None = None,
) -> dict[str, str]:
    """Everything a worker of this function sees in ``os.environ`` (see the module docstring)."""
    passed = {
        key: value
        for key, value in gateway_env.items()
        if (key in PASS_THROUGH or key.startswith(_PASS_THROUGH_PREFIXES))
        and not key.startswith(_GATEWAY_PREFIX)
    }
    passed.update((key, gateway_env[key]) for key in pass_env if key in gateway_env)
    has_credentials = "AWS_ACCESS_KEY_ID" in passed or "AWS_ACCESS_KEY_ID" in (environment or {})
    version = python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
    return {
        **({} if has_credentials else _PLACEHOLDER_CREDENTIALS),
        "PATH": gateway_env.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",  # not reserved on Lambda: a function may set its own time zone
        "PYTHONUNBUFFERED": "1",  # output reaches the log as written, in order with stderr
        **passed,
        **(environment or {}),
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{version}",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "LAMBDA_TASK_ROOT": task_root,
        "LAMBDA_RUNTIME_DIR": runtime_dir,
        # The worker's own code (Lambda: /var/runtime), then the function's requirements and layers
        # (the worker moves its task root and these ahead of the runtime before loading the handler).
        "PYTHONPATH": os.pathsep.join([runtime_dir, *python_path]),
        "_HANDLER": handler,
    }
