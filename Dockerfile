# Portway gateway image. Build: docker build -t portway .
# Run:   docker run -p 3000:3000 -v "$PWD/examples/hello:/app/config" portway serve /app/config/portway.yaml --host 0.0.0.0
# Quota/usage counters and API keys of the embedded store are kept in $PORTWAY_STATE_FILE: mount a
# volume on /var/lib/portway (-v portway-state:/var/lib/portway) to keep them across containers.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
ENV PORTWAY_STATE_FILE=/var/lib/portway/state.json
WORKDIR /opt/portway
COPY pyproject.toml README.md constraints.txt ./
COPY server ./server
COPY routes ./routes
COPY connections ./connections
RUN pip install -c constraints.txt . && useradd --system --uid 10001 portway \
    && install -d -o portway -g portway -m 0700 /var/lib/portway
COPY examples ./examples

USER portway
EXPOSE 3000
ENTRYPOINT ["portway"]
CMD ["serve", "examples/hello/portway.yaml", "--host", "0.0.0.0", "--port", "3000"]
