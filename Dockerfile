# keyward's container image: the worker by default, the codec server or the operator CLI
# by command.
#
#   docker build -t keyward:0.1.0 .
#   docker run keyward:0.1.0                      # python -m worker
#   docker run keyward:0.1.0 codec_server         # python -m codec_server
#   docker run keyward:0.1.0 starter status       # python -m starter status
#
# Two stages: the builder installs keyward and its dependencies into a virtualenv at
# /opt/venv (every dependency ships wheels, so no compiler is needed there either); the
# final stage is the same python:3.11-slim with only that virtualenv copied in, running
# as an unprivileged numeric user so `runAsNonRoot` can verify it.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
# "kubernetes" is needed for the cert-manager issuer and the kubernetes-secret installer;
# add "azure" for the Azure Key Vault issuer: --build-arg KEYWARD_EXTRAS=kubernetes,azure
ARG KEYWARD_EXTRAS=kubernetes
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# Only what the package needs (see .dockerignore): pyproject.toml reads README.md.
COPY pyproject.toml README.md ./
COPY keyward ./keyward
COPY workflows ./workflows
COPY activities ./activities
COPY worker.py starter.py codec_server.py ./
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --only-binary=:all: ".[${KEYWARD_EXTRAS}]" \
    && /opt/venv/bin/python -c "import worker, codec_server, starter"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="keyward" \
      org.opencontainers.image.description="Temporal worker: Vault Transit payload encryption, key rotation, mTLS certificate renewal and reload; codec server" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 keyward \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin keyward
COPY --from=builder /opt/venv /opt/venv
# PYTHONDONTWRITEBYTECODE: the root filesystem is read-only in Kubernetes (the venv was
# byte-compiled at install). Logs are JSON lines. The worker serves /health and /metrics
# on 9464 (the HEALTHCHECK and the Kubernetes probes use it); the codec server ignores it.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    KEYWARD_LOGGING__FORMAT=json \
    KEYWARD_METRICS__HOST=0.0.0.0 \
    KEYWARD_METRICS__PORT=9464
WORKDIR /app
USER 10001:10001
EXPOSE 9464 8234
# No curl in slim: the check is Python. The worker answers on its metrics port; the codec
# server (PID 1 runs codec_server) on its own port and scheme, read from the same settings
# the server uses (a self-signed or private-CA certificate is fine here: this checks
# liveness, not identity; with codec_server.tls_client_ca set, use a TCP probe instead).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, ssl, urllib.request\nif b'codec_server' in open('/proc/1/cmdline', 'rb').read():\n    from keyward.config import load_settings\n    s = load_settings().codec_server\n    host = '127.0.0.1' if s.host in ('', '0.0.0.0', '::') else s.host\n    url = f'{s.scheme}://{host}:{s.port}/health'\nelse:\n    url = 'http://127.0.0.1:' + os.environ.get('KEYWARD_METRICS__PORT', '9464') + '/health'\nctx = ssl.create_default_context()\nctx.check_hostname = False\nctx.verify_mode = ssl.CERT_NONE\nurllib.request.urlopen(url, timeout=4, context=ctx)\n"]
ENTRYPOINT ["python", "-m"]
CMD ["worker"]
