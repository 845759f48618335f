# Sourced by every installer (scripts/test-deps.d/*.sh, scripts/bench-deps.sh,
# deploy/local-cluster/install-deps.sh): one way to install Debian packages.
#
#   apt_install [--with-recommends] WHO "what to do without apt-get" PACKAGE...
#
# Quiet; waits up to 5 minutes for another apt run's dpkg lock instead of failing at once; never
# lets needrestart restart services (the Postgres the tests use) mid-run; uses sudo when not root.
# Without apt-get it prints "WHO: <hint>" on stderr and returns 1.
apt_install() {
  local recommends=--no-install-recommends
  if [ "$1" = --with-recommends ]; then recommends=""; shift; fi
  local who=$1 hint=$2
  shift 2
  if ! command -v apt-get >/dev/null; then
    echo "$who: $hint" >&2
    return 1
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "$who: installing $*"
  export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
  $sudo apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null
  # shellcheck disable=SC2086  # $recommends is one flag or nothing
  $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -q $recommends "$@" >/dev/null
}
