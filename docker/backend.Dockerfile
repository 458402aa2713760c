# The EQ backend image: a Python interpreter with the part of its standard library and the
# shared libraries it needs, a virtualenv with the backend's pinned runtime dependencies, and
# the eq_backend package with its migrations. Nothing else: no shell, no package manager, no
# compiler, no uv or pip, no tests, no .env.
#
#   docker buildx build -f docker/backend.Dockerfile \
#       --secret id=cacert,src=/etc/ssl/certs/ca-certificates.crt \
#       [--build-arg BASE_IMAGE=127.0.0.1:5000/<a locally built Python 3.11 base>] .
#
# BASE_IMAGE may be the official slim image (Python in /usr/local/bin) or a Debian bookworm
# rootfs with python3 + python3-venv (Python in /usr/bin): everything below calls `python3`
# once to make a venv and then only the venv's own python. The base builds the venv and
# provides the interpreter; the image itself is FROM scratch (docker/assemble_rootfs.py picks
# from the base what the interpreter needs).
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
# the running container's root filesystem is read-only. The wheels' own extension modules are
# stripped of debug info and of symbols nothing links against (uvloop's 13.6 MB module is
# 1.6 MB, cryptography's 14.2 MB is 11.6 MB); libraries auditwheel vendored (*.libs/) are left
# alone: patchelf rewrote them and strip can corrupt such files. C/Cython sources and headers
# shipped beside the modules go (nothing compiles here at run time; the wheels' RECORD files
# still list them, which only an uninstall would read), and so do the venv's activate
# scripts (there is no shell to source them) and Litestar's CLI entry point (its packages are
# left out: requirements/backend-excludes.txt; the app runs as `python -m eq_backend`).
RUN --mount=type=secret,id=cacert \
    --mount=type=cache,target=/root/.cache/uv,sharing=locked \
    if [ -s /run/secrets/cacert ]; then \
        export SSL_CERT_FILE=/run/secrets/cacert UV_NATIVE_TLS=1; \
    fi; \
    python3 -m venv --without-pip /opt/venv; \
    /opt/uv/bin/uv pip sync --python /opt/venv/bin/python --require-hashes requirements/backend.txt; \
    /opt/venv/bin/python -c 'import pathlib, sysconfig; \
pathlib.Path(sysconfig.get_path("purelib"), "eq_backend.pth").write_text("/app\n")'; \
    find /opt/venv -name '*.so' ! -path '*.libs/*' -exec strip --strip-unneeded {} +; \
    find /opt/venv/lib \( -name '*.c' -o -name '*.h' -o -name '*.cpp' -o -name '*.pyx' \
        -o -name '*.pxd' -o -name '*.pxi' \) -type f -delete; \
    rm -f /opt/venv/bin/activate /opt/venv/bin/activate.* /opt/venv/bin/Activate.ps1 \
        /opt/venv/bin/litestar

# The backend package (imported from /app through the .pth above) and Alembic's config.
# Only this part changes with a code-only commit.
COPY services/backend/alembic.ini /app/alembic.ini
COPY services/backend/src/eq_backend /app/eq_backend
RUN /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash /app/eq_backend

# ---------------------------------------------------------------------------------------------
# The runtime's root filesystem, assembled in /rootfs from the base: the interpreter, its
# standard library less what a server never imports, the shared libraries that and the venv's
# extension modules load (found with ldd), CA certificates, time zones, a minimal passwd
# with the app's user. See docker/assemble_rootfs.py.
FROM ${BASE_IMAGE} AS rootfs
SHELL ["/bin/sh", "-eu", "-c"]
ENV PYTHONDONTWRITEBYTECODE=1
COPY --from=builder /opt/venv /opt/venv
COPY docker/assemble_rootfs.py /build/assemble_rootfs.py
RUN /opt/venv/bin/python /build/assemble_rootfs.py /rootfs

# ---------------------------------------------------------------------------------------------
# Three layers: the system part (changes with the base or the requirements), the venv (with
# the requirements), the app (with every commit: a code-only change rebuilds only this one).
FROM scratch AS runtime
COPY --from=rootfs /rootfs /
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app

ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8
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
