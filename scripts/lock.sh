#!/usr/bin/env bash
# Regenerates the lock files the images install from (requirements/*.txt, with hashes):
#   runtime.txt  the service's dependencies from pyproject.toml, for every platform (--universal)
#   build.txt    the installer (uv) the Dockerfiles use in their builder stage
#   dev.txt      the runtime dependencies plus the dev and test tools (the `dev` extra: ruff, mypy,
#                pytest and its plugins, schemathesis, selenium, ...): what `make install` installs
# Run after changing [project.dependencies] or the extras in pyproject.toml, or
# requirements/build.in;
# tests/chart/test_build_inputs.py fails while the lock no longer satisfies pyproject.toml.
# Pass --upgrade to move every pin to the newest allowed release.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${QW_CACHE:-${HOME:-$(cd ~ && pwd)}/.cache/queue-worker}
uv=$cache/tools/bin/uv
if [ ! -x "$uv" ]; then
  python3 -m venv "$cache/tools"
  "$cache/tools/bin/pip" install --quiet --require-hashes --no-deps -r "$root/requirements/build.txt" \
    || "$cache/tools/bin/pip" install --quiet "$(grep -E '^uv==' "$root/requirements/build.in")"
fi
cd "$root"
common=(--universal --python-version 3.11 --generate-hashes --quiet --no-config
  --custom-compile-command scripts/lock.sh "$@")
"$uv" pip compile "${common[@]}" pyproject.toml -o requirements/runtime.txt
"$uv" pip compile "${common[@]}" requirements/build.in -o requirements/build.txt
"$uv" pip compile "${common[@]}" --extra dev pyproject.toml -o requirements/dev.txt
