# paperbridge: one container runs the whole bridge on SQLite in /data (or PostgreSQL via
# PAPERBRIDGE_DATABASE_URL).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PAPERBRIDGE_DATABASE_URL=sqlite:////data/paperbridge.db \
    PAPERBRIDGE_HOST=0.0.0.0 PAPERBRIDGE_PORT=8080

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bridge ./bridge
COPY adapters ./adapters
RUN pip install . && useradd --system --uid 10001 --home /data paperbridge \
    && mkdir -p /data && chown paperbridge /data

USER paperbridge
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=60s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"
CMD ["paperbridge", "serve"]
