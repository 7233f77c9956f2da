# syntax=docker/dockerfile:1
# Nattero's image: the wheel (API, gateway, rules and the night board) on Python 3.11, run
# as a user without privileges. deploy/compose.yaml builds and runs it; by hand:
#   docker build -t nattero:0.1.0 .
#   docker run --rm nattero:0.1.0 nattero --version
# The base is pinned to an exact Python and Debian release; move it on deliberately (a new
# tag, then the image test: tests/test_container.py).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api api
COPY core core
COPY dashboard dashboard
COPY deploy deploy
COPY evaluation evaluation
COPY gateway gateway
COPY ingest ingest
COPY nattero nattero
COPY provisioning provisioning
COPY rules rules
COPY simulators simulators
COPY backtest backtest
# The wheel of Nattero (board included: package data) and of every dependency.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NATTERO_MODE=production \
    NATTERO_STATE_DIR=/var/lib/nattero
RUN groupadd --system --gid 10001 nattero \
 && useradd --system --uid 10001 --gid nattero --home-dir /var/lib/nattero \
      --shell /usr/sbin/nologin nattero \
 && install -d -o nattero -g nattero -m 0750 /var/lib/nattero /var/lib/nattero/ca
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links /wheels nattero && rm -rf /wheels
USER 10001:10001
WORKDIR /var/lib/nattero
EXPOSE 8443
# HTTPS with a certificate from the installation's CA (`nattero certs server`) or the
# municipality's own; the compose file mounts it.
CMD ["nattero", "serve", "--host", "0.0.0.0", "--port", "8443", \
     "--ssl-certfile", "/var/lib/nattero/ca/api.pem", \
     "--ssl-keyfile", "/var/lib/nattero/ca/api.key"]
