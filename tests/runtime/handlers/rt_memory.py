import resource

_kept = []


def grow(event, context):
    """Allocates ``mb`` MiB in 8 MiB steps (as a leak would), keeping every chunk."""
    for _ in range(event["mb"] // 8):
        _kept.append(bytearray(8 * 1024 * 1024))
    return {"kept_mb": len(_kept) * 8}


def limit(event, context):
    return {"data": resource.getrlimit(resource.RLIMIT_DATA)[0]}


def proxy(event, context):
    mb = int((event.get("queryStringParameters") or {}).get("mb", "0"))
    return {"statusCode": 200, "body": str(grow({"mb": mb}, context)["kept_mb"])}
