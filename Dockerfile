# syntax=docker/dockerfile:1
# Portway gateway image (docs/deployment.md). Build: docker build -t portway .
# Run your service: mount the folder holding its portway.yaml / serverless.yml AND its handlers
# (handler paths are relative to the definition) on /app/config:
#   docker run -p 3000:3000 -v "$PWD/myservice:/app/config:ro" portway serve /app/config/serverless.yml
# Without arguments it serves the bundled hello example. Listens on $PORTWAY_HOST:$PORTWAY_PORT
# (0.0.0.0:3000); PORTWAY_REDIS_URL selects Redis for several replicas.
# Both stages run the scripts in deploy/image/, which tests/deploy/test_image.py replays in a
# fresh venv (no Docker engine runs in CI): change the steps there, not here.

# --- build: wheels for Portway and its runtime dependencies, pinned by constraints.txt ---------
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE constraints.txt ./
COPY server ./server
COPY routes ./routes
COPY connections ./connections
COPY deploy/image ./deploy/image
RUN sh deploy/image/build-wheels.sh /wheels

# --- runtime: slim Python 3.11, the wheels installed into a venv, nothing else -----------------
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/portway/venv/bin:$PATH \
    PORTWAY_HOST=0.0.0.0 PORTWAY_PORT=3000 \
    PORTWAY_STATE_FILE=/var/lib/portway/state.json PORTWAY_CACHE_DIR=/var/lib/portway/cache
# tini as PID 1: forwards SIGTERM to portway (which drains: WebSocket clients get 1001 and
# $disconnect runs) and reaps the handler worker processes portway starts.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 portway \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/portway --shell /usr/sbin/nologin portway \
    && install -d -o portway -g portway -m 0700 /var/lib/portway
COPY deploy/image/install-runtime.sh /tmp/install-runtime.sh
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    sh /tmp/install-runtime.sh /wheels /opt/portway/venv && rm /tmp/install-runtime.sh
COPY examples /opt/portway/examples
WORKDIR /app

USER 10001:10001
EXPOSE 3000
# Embedded-store state (keys, quota counters) and the handler requirements cache: a volume keeps them.
VOLUME ["/var/lib/portway"]
STOPSIGNAL SIGTERM
# Liveness only (/@health): a Redis outage must not get a working container restarted.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/@health' % os.environ.get('PORTWAY_PORT', '3000'), timeout=2)"]
ENTRYPOINT ["tini", "--", "portway"]
CMD ["serve", "/opt/portway/examples/hello/portway.yaml"]
