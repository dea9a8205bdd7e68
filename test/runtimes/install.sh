#!/usr/bin/env bash
# Installs the two container runtimes the CNI plugin must work under, plus the
# static busybox the test image is made of. Idempotent: does nothing when all
# are present. Kept minimal on purpose (--no-install-recommends): podman's CNI
# backend needs only containernetworking-plugins (already a weft dependency)
# and a containers.conf saying network_backend="cni", which the test helpers
# write to a temp file; netavark, slirp4netns, buildah, fuse-overlayfs and the
# dnsname plugin are not needed.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have podman     || need+=(podman)
have containerd || need+=(containerd)
have ctr        || need+=(containerd)
# busybox-static replaces the dynamic busybox; the image needs a binary that
# runs without a libc inside the rootfs.
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)

if [ ${#need[@]} -gt 0 ]; then
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  if [ "$(id -u)" != 0 ]; then
    echo "install as root: apt-get install --no-install-recommends ${need[*]}" >&2
    exit 1
  fi
  echo "installing: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${need[@]}" >&2 ||
    { apt-get -o DPkg::Lock::Timeout=600 update -q >&2 &&
      apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${need[@]}" >&2; }
fi
