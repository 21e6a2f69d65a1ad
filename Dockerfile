# paperbridge: one container runs the whole bridge on SQLite in /data (or PostgreSQL via
# PAPERBRIDGE_DATABASE_URL).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PAPERBRIDGE_DATABASE_URL=sqlite:////data/paperbridge.db \
    PAPERBRIDGE_HOST=0.0.0.0 PAPERBRIDGE_PORT=8080

WORKDIR /app
# The lock first: its layer is rebuilt only when a dependency changes, not on every edit.
COPY requirements/serve.txt ./requirements/
RUN pip install --require-hashes --no-deps -r requirements/serve.txt
COPY pyproject.toml README.md ./
COPY bridge ./bridge
COPY adapters ./adapters
RUN pip install --no-deps --no-build-isolation . \
    && useradd --system --uid 10001 --home /data paperbridge \
    && mkdir -p /data && chown paperbridge /data

USER paperbridge
VOLUME ["/data"]
EXPOSE 8080
# Asks /healthz on the port the settings give (PAPERBRIDGE_PORT or the config file's).
HEALTHCHECK --interval=60s --timeout=5s --start-period=30s --retries=3 \
    CMD ["paperbridge", "healthcheck"]
CMD ["paperbridge", "serve"]
