# The worker (and, for local use, the SCIM test server) as one image.
#   docker build -t engagement-lifecycle .
#   docker run --rm -e TEMPORAL_ADDRESS=... -e DATABASE_URL=postgresql+asyncpg://... engagement-lifecycle
FROM python:3.11-slim

# No .pyc files in a read-only-for-us /app, and logs straight to `docker logs` without buffering.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The worker holds the SendGrid key and the clients' SCIM tokens: it does not run as root.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app --shell /usr/sbin/nologin app

WORKDIR /app

# pyproject.toml lists the py-modules and the packages, so `pip install .` needs the sources too.
# `*.py` copies the entry points (worker.py, starter.py, webhook.py, provider_webhook.py, codec_server.py,
# certification.py, demo.py) and settings.py. tests/test_image.py builds this file tree from the COPY
# lines below and imports every entry point from it alone.
COPY pyproject.toml alembic.ini ./
COPY *.py ./
COPY domain/ domain/
COPY emails/ emails/
COPY adapters/ adapters/
COPY workflows/ workflows/
COPY activities/ activities/
COPY migrations/ migrations/
COPY cli/ cli/
# The firm's table of permitted screenings (domain/screening.py's default), read at the worker's start.
COPY config/ config/
# The worker's container healthcheck (deploy/worker_healthcheck.py); the compose stack's scripts.
COPY deploy/ deploy/

# The code is also kept in /app, not only in site-packages: `python worker.py` imports from here and
# adapters/db.py finds alembic.ini and migrations/ next to it (the worker migrates at start).
RUN pip install --no-cache-dir . \
 && rm -rf build ./*.egg-info

# RUN_DIR (outbox folder, logs). Created here, owned by the app user, so that a named volume mounted
# on /data starts with that ownership: Docker copies it from the image into a new, empty volume.
RUN mkdir -p /data && chown app:app /data
ENV RUN_DIR=/data

USER app

# Exec form: python is PID 1 and gets SIGTERM from `docker stop`, which the worker handles by
# draining in-flight tasks before exiting.
CMD ["python", "worker.py"]
