# One image for every production process: `charters worker` (the default),
# `charters confirm-server` and `charters codec-server`. Configuration is CHARTERS_* only.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 charters \
    && useradd --system --uid 10001 --gid charters --home-dir /home/charters \
       --create-home --shell /usr/sbin/nologin charters

WORKDIR /src
COPY pyproject.toml ./
# Only the product: the local stack, stand-ins, bench and chaos (devtools/) never enter the image.
COPY charters/ ./charters/
RUN pip install . \
    && rm -rf /src/build /src/*.egg-info

WORKDIR /home/charters
USER charters:charters

# The worker's health endpoint; confirm-server and codec-server override this in compose.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${CHARTERS_HEALTH_PORT:-8080}/healthz', timeout=4)" || exit 1

# Exec form, so SIGTERM from `docker stop` reaches the Python process (graceful worker shutdown).
ENTRYPOINT ["charters"]
CMD ["worker"]
