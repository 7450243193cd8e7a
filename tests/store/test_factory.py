"""open_store picks the backend from the configured URL, and never guesses."""

from __future__ import annotations

import pytest

from server.store import MemoryStore, RedisStore, Store, open_store


@pytest.mark.parametrize("url", [None, "", "memory://"])
async def test_no_url_is_embedded(url: str | None) -> None:
    store = open_store(url)
    assert isinstance(store, MemoryStore) and isinstance(store, Store)
    assert store.name == "embedded"
    await store.close()


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0", "rediss://cache:6380", "unix:///tmp/redis.sock"])
async def test_redis_urls(url: str) -> None:
    store = open_store(url, namespace="gw1:", timeout=0.5)
    assert isinstance(store, RedisStore) and isinstance(store, Store)
    assert store.name == "redis" and store.namespace == "gw1:"
    await store.close()  # never connected: closing must still be clean


@pytest.mark.parametrize("url", ["http://cache:6379", "memcached://x", "localhost:6379"])
def test_unknown_schemes_are_configuration_errors(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported store URL"):
        open_store(url)


def test_package_exports() -> None:
    import server.store as pkg

    for name in pkg.__all__:
        assert getattr(pkg, name) is not None
    with pytest.raises(AttributeError):
        _ = pkg.nope
