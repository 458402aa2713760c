# The EQ backend image: Python, a virtualenv with the backend's pinned runtime dependencies,
# and the eq_backend package with its migrations. Nothing else: no compiler, no uv, no pip
# cache, no tests, no .env.
#
#   docker buildx build -f docker/backend.Dockerfile \
#       --secret id=cacert,src=/etc/ssl/certs/ca-certificates.crt \
#       [--build-arg BASE_IMAGE=127.0.0.1:5000/<a locally built Python 3.11 base>] .
#
# BASE_IMAGE may be the official slim image (Python in /usr/local/bin) or a Debian bookworm
# rootfs with python3 + python3-venv (Python in /usr/bin): everything below calls `python3`
# once to make a venv and then only the venv's own python.
#
# The `cacert` secret is optional. Where HTTPS to the package index goes through a proxy with
# its own CA, pass that CA bundle as a BuildKit secret: it is mounted for the two install steps
# only and never lands in a layer.
#
# No `# syntax=` line on purpose: it would make BuildKit pull a frontend image. The built-in
# Dockerfile frontend (Docker 20.10 onwards) has everything used here.

ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS builder
# Every RUN below stops at its first failing command.
SHELL ["/bin/sh", "-eu", "-c"]

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1
WORKDIR /build

# binutils for `strip` below, from the base's own Debian release (builder stage only).
# hadolint ignore=DL3008
RUN apt-get update -qq; \
    apt-get install -y -qq --no-install-recommends binutils >/dev/null; \
    rm -rf /var/lib/apt/lists/*

# uv itself, from its hash-pinned block in requirements/tools.txt (uv has no dependencies).
COPY requirements/tools.txt requirements/backend.txt requirements/
RUN --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then \
        export SSL_CERT_FILE=/run/secrets/cacert PIP_CERT=/run/secrets/cacert; \
    fi; \
    awk '/^uv==/ {p = 1} p {print} p && !/\\$/ {exit}' requirements/tools.txt > requirements/uv.txt; \
    grep -q '^uv==' requirements/uv.txt; \
    python3 -m venv /opt/uv; \
    /opt/uv/bin/pip install --no-cache-dir --no-deps --require-hashes -r requirements/uv.txt

# The runtime dependencies, hash-checked, into a pip-less venv; bytecode compiled here because
# the running container's root filesystem is read-only. Several wheels ship their extension
# modules with debug info (uvloop's alone is 13 MB, 1.6 MB without): drop it. Libraries that
# auditwheel vendored (*.libs/) are left alone; they carry none and patchelf'd them.
RUN --mount=type=secret,id=cacert \
    --mount=type=cache,target=/root/.cache/uv,sharing=locked \
    if [ -s /run/secrets/cacert ]; then \
        export SSL_CERT_FILE=/run/secrets/cacert UV_NATIVE_TLS=1; \
    fi; \
    python3 -m venv --without-pip /opt/venv; \
    /opt/uv/bin/uv pip sync --python /opt/venv/bin/python --require-hashes requirements/backend.txt; \
    /opt/venv/bin/python -c 'import pathlib, sysconfig; \
pathlib.Path(sysconfig.get_path("purelib"), "eq_backend.pth").write_text("/app\n")'; \
    find /opt/venv -name '*.so' ! -path '*.libs/*' -exec strip --strip-debug {} +

# The backend package (imported from /app through the .pth above) and Alembic's config.
# Only this part changes with a code-only commit.
COPY services/backend/alembic.ini /app/alembic.ini
COPY services/backend/src/eq_backend /app/eq_backend
RUN /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash /app/eq_backend

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
SHELL ["/bin/sh", "-eu", "-c"]

# A fixed UID/GID so Kubernetes' runAsNonRoot can verify it and volumes can be owned by it.
# The base's pip goes too (Debian's package, or the official image's own): nothing installs
# at run time.
RUN groupadd --system --gid 10001 eq; \
    useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin eq; \
    if dpkg -s python3-pip >/dev/null 2>&1; then \
        dpkg --purge python3-pip >/dev/null; \
    elif python3 -m pip --version >/dev/null 2>&1; then \
        python3 -m pip uninstall --yes --quiet pip setuptools wheel; \
    fi; \
    rm -rf /root/.cache

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app

ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /app
USER 10001:10001
EXPOSE 8000

# Exec form: python is PID 1 and gets SIGTERM itself; uvicorn handles it with a graceful
# shutdown (stop accepting, finish in-flight requests, close pools). The app starts no child
# processes, so there is nothing for an init to reap. The migration Job runs
# `alembic upgrade head` (or `python -m eq_backend migrate`) with the same image.
STOPSIGNAL SIGTERM
CMD ["/opt/venv/bin/python", "-m", "eq_backend", "run", "--host", "0.0.0.0", "--port", "8000"]

# Labels last: their build args change on every commit and must not invalidate any layer.
ARG BASE_IMAGE
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="eq-backend" \
      org.opencontainers.image.description="The EQ backend (Litestar): /health and /api/v1" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
