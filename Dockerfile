# syntax=docker/dockerfile:1
# Multi-stage: build the wheels, install them into a venv, copy the venv into a runtime image
# that runs gunicorn as a non-root user. Works on the official slim image (the default) and on
# any Debian-like image with python3 3.11+ and python3-venv (scripts/container-check builds one
# with debootstrap, since no registry image can be pulled there).
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python3 -m venv /opt/build && /opt/build/bin/pip install --upgrade pip wheel
COPY pyproject.toml README.md ./
COPY migrations ./migrations
COPY inventory ./inventory
# The project's wheel plus a wheel for every dependency, then an offline install of them all.
RUN /opt/build/bin/pip wheel --wheel-dir /wheels . \
    && python3 -m venv /opt/inventory \
    && /opt/inventory/bin/pip install --no-index --find-links /wheels inventory

FROM ${BASE_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/inventory/bin:$PATH \
    PORT=8000 \
    INVENTORY_DATABASE_URL=sqlite:////data/inventory.db \
    INVENTORY_MIGRATE_AT_START=0
# The entrypoint runs the command it is given (gunicorn by default, or e.g. `inventory db
# upgrade`), after migrating the database first when INVENTORY_MIGRATE_AT_START=1.
RUN useradd --uid 10001 --user-group --home-dir /data --no-create-home --no-log-init \
        --shell /usr/sbin/nologin inventory \
    && mkdir -p /data && chown inventory:inventory /data \
    && printf '%s\n' '#!/bin/sh' 'set -e' \
        'case "${INVENTORY_MIGRATE_AT_START:-0}" in' \
        '  1|true|yes) inventory db upgrade ;;' \
        'esac' \
        'exec "$@"' > /usr/local/bin/inventory-entrypoint \
    && chmod 0755 /usr/local/bin/inventory-entrypoint
COPY --from=build /opt/inventory /opt/inventory
COPY gunicorn.conf.py /etc/inventory/gunicorn.conf.py
USER inventory
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD python3 -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=2)"
ENTRYPOINT ["/usr/local/bin/inventory-entrypoint"]
CMD ["gunicorn", "-c", "/etc/inventory/gunicorn.conf.py", "inventory.wsgi:app"]
