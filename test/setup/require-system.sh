#!/usr/bin/env bash
# The tests drive the real kernel and real peers (iptables, etcd,
# wireguard-go, the reference CNI plugins). A missing one is installed here
# (root on Debian) or named with the command that installs it: never skipped.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have ip             || need+=(iproute2)
have iptables       || need+=(iptables)
have iptables-restore || need+=(iptables)
have etcd           || need+=(etcd-server)
have wireguard-go   || need+=(wireguard-go)
have wg             || need+=(wireguard-tools)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
have iperf3         || need+=(iperf3)
have tcpdump        || need+=(tcpdump)
have ping           || need+=(iputils-ping)
have ethtool        || need+=(ethtool)
have cc             || need+=(gcc libc6-dev)
have podman         || need+=(podman)
have ctr            || need+=(containerd)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
have nft           || need+=(nftables)
dpkg -s libnftables1 >/dev/null 2>&1 || need+=(libnftables1)
have conntrack     || need+=(conntrack)
have haproxy       || need+=(haproxy)
have wrk           || need+=(wrk)
have vagrant       || need+=(vagrant)
have shellcheck    || need+=(shellcheck)
have systemd-analyze || need+=(systemd)
have chromium      || need+=(chromium)

if [ ${#need[@]} -gt 0 ]; then
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  if [ "$(id -u)" = 0 ] && have apt-get; then
    echo "installing missing system packages: ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -q >&2
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${need[@]}" >&2
  else
    echo "weft tests need these Debian packages: ${need[*]}" >&2
    echo "install them as root: apt-get install --no-install-recommends ${need[*]}" >&2
    exit 1
  fi
fi

if [ "$(id -u)" != 0 ]; then
  echo "weft tests create network namespaces, links and iptables rules: run them as root" >&2
  exit 1
fi
