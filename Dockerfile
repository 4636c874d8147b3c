# The operator image: the runtime package only (no emulator, no local stack, no tests), its
# dependencies from the hash-pinned lock file, a non-root user, nothing written outside /tmp (the
# chart mounts the root filesystem read-only), no pip or build tools in the final stage.
#
#   docker build -t openai-operator .
#
# The locks are regenerated with:
#   uv pip compile pyproject.toml --generate-hashes --python-version 3.11 --universal -o requirements.lock
#   printf 'setuptools>=75\nwheel\n' | uv pip compile - --generate-hashes --python-version 3.11 \
#       --universal -o build-requirements.lock
# (tests/integration/test_image.py checks it covers every runtime dependency, and builds the final
# stage's file list without a container engine.)

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/operator
COPY requirements.lock build-requirements.lock /src/
RUN /opt/operator/bin/pip install --require-hashes --no-deps -r /src/requirements.lock \
 && /opt/operator/bin/pip install --require-hashes --no-deps -r /src/build-requirements.lock
COPY pyproject.toml README.md /src/
COPY operator /src/operator
# Built with the locked setuptools, not whatever an isolated build environment would download.
RUN /opt/operator/bin/pip install --no-deps --no-build-isolation /src \
 && /opt/operator/bin/pip uninstall -y pip setuptools wheel packaging

FROM ${PYTHON_IMAGE}
RUN python -m pip uninstall -y pip setuptools wheel
COPY --from=build /opt/operator /opt/operator
ENV PATH=/opt/operator/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["openai-operator", "run"]
