#!/usr/bin/env bash
# The base image the container tests build on: `local/python-base`, a minimal Debian bookworm with
# python3 made with debootstrap, because no image registry is reachable here (users build on the
# official slim Python image instead; see Dockerfile.api). The root filesystem is cached as a
# tarball in $QW_CACHE so a pruned Docker engine gets it back in seconds.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/apt-install.sh"
image=${QW_BASE_IMAGE:-local/python-base}
cache=${QW_CACHE:-${HOME:-$(cd ~ && pwd)}/.cache/queue-worker}
tarball=$cache/python-base-bookworm.tar
mkdir -p "$cache"

if docker image inspect "$image" >/dev/null 2>&1; then exit 0; fi

if [ ! -s "$tarball" ]; then
  if ! command -v debootstrap >/dev/null; then
    apt_install --with-recommends test-deps "install debootstrap" debootstrap
  fi
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  echo "test-deps: debootstrap bookworm from $mirror (a few minutes, once)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  # This machine's CA bundle: package downloads inside `docker build` go through the same TLS
  # setup as on the host.
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  # Smaller image: no apt lists, docs or caches are needed at run time.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
  tar -C "$rootfs" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi

echo "test-deps: importing $image"
docker import -c "ENV LANG=C.UTF-8" "$tarball" "$image" >/dev/null
