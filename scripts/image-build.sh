#!/bin/sh
# The builder stage of both images (Dockerfile.api, Dockerfile.worker), written once.
#   image-build.sh deps          a venv in /opt/venv with the locked runtime dependencies
#   image-build.sh app SERVICE   the code in /app (copied there by the Dockerfile) made runnable,
#                                and a check that the other service's code did not come along
# POSIX sh: the base image (any Debian-like image with python3) need not have bash.
set -eu
case "${1:-}" in
deps)
  # Wheels only (--only-binary) and hash-checked (--require-hashes): no compiler in any stage, and
  # nothing installed that the lock files in requirements/ do not name. uv itself comes from the
  # hashed requirements/build.txt; /opt/uv stays in the builder stage.
  python3 -m venv /opt/uv
  /opt/uv/bin/pip install --quiet --require-hashes --only-binary=:all: --no-deps \
    -r requirements/build.txt
  python3 -m venv --without-pip /opt/venv
  /opt/uv/bin/uv pip sync --quiet --python /opt/venv/bin/python --require-hashes \
    --only-binary :all: --compile-bytecode requirements/runtime.txt
  ;;
app)
  service=${2:?image-build.sh app needs the service: api or worker}
  case "$service" in api) other=worker ;; worker) other=api ;; *) echo "unknown service $service" >&2; exit 2 ;; esac
  # /app goes on sys.path through a .pth file; `queue-worker` is the console script pyproject.toml
  # declares, written out here since the package itself is not pip-installed (that would bring
  # the other service along).
  purelib=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo /app >"$purelib/queue_worker.pth"
  printf '#!/opt/venv/bin/python\nimport sys\nfrom services.cli import main\nsys.exit(main())\n' \
    >/opt/venv/bin/queue-worker
  chmod 0755 /opt/venv/bin/queue-worker
  /opt/venv/bin/python -m compileall -q /app
  test -d "/app/services/$service"
  if [ -e "/app/services/$other" ]; then echo "the $service image carries $other code" >&2; exit 1; fi
  ;;
*)
  echo "usage: image-build.sh deps | app api|worker" >&2
  exit 2
  ;;
esac
