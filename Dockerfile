# syntax=docker/dockerfile:1
# Multi-stage: build a wheel, install it into a slim runtime that runs as a non-root user.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
WORKDIR /src
RUN python3 -m venv /opt/build && /opt/build/bin/pip install --no-cache-dir --upgrade pip wheel
COPY pyproject.toml README.md ./
COPY inventory ./inventory
COPY migrations ./migrations
RUN /opt/build/bin/pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${BASE_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PORT=8000 \
    INVENTORY_DATABASE_URL=sqlite:////data/inventory.db
RUN python3 -m venv /opt/inventory && useradd --system --uid 10001 --home /data inventory \
    && mkdir -p /data && chown inventory /data
COPY --from=build /wheels /wheels
RUN /opt/inventory/bin/pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY gunicorn.conf.py /etc/inventory/gunicorn.conf.py
USER inventory
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python3 -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/health', timeout=2)"
# Migrations are a separate step: `docker run IMAGE inventory db upgrade` before rolling out.
ENV PATH=/opt/inventory/bin:$PATH
CMD ["gunicorn", "-c", "/etc/inventory/gunicorn.conf.py", "inventory.wsgi:app"]
