#!/usr/bin/env bash
# Installs weft as the README tells an operator to: Debian packages, Node 20,
# the clone (here a copy of the one Vagrant synced to /weft-src), `npm ci`
# (which builds dist/), `npm link` (puts `weft` on PATH), and the systemd
# units from vagrant/systemd/. Running it again upgrades in place: the units
# are restarted by the role scripts.
#   weft.sh [extra Debian packages...]
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
apt_get() { apt-get -o DPkg::Lock::Timeout=600 -q -y "$@"; }

apt_get update
# gcc, libc6-dev: the C CNI shim; g++, make, python3: better-sqlite3 when its
# prebuilt binary is out of reach; iproute2 and iptables: what the agent
# drives; rsync: the copy below.
apt_get install --no-install-recommends ca-certificates curl rsync gcc libc6-dev g++ make python3 \
  iproute2 iptables "$@"

# Node 20 from NodeSource's Debian repository, signed with their key.
if ! node --version 2>/dev/null | grep -q '^v20\.'; then
  install -d -m 755 /etc/apt/keyrings
  curl -fsSL https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key -o /etc/apt/keyrings/nodesource.asc
  echo 'deb [signed-by=/etc/apt/keyrings/nodesource.asc] https://deb.nodesource.com/node_20.x nodistro main' \
    >/etc/apt/sources.list.d/nodesource.list
  apt_get update
  apt_get install nodejs
fi
node --version

# A root-owned copy: the units run this code as root, so no other user may
# change it (the synced folder belongs to the vagrant user).
install -d -m 755 /opt/weft
rsync -a --delete --chown=root:root \
  --exclude node_modules/ --exclude dist/ --exclude .weft-data/ --exclude vagrant/.vagrant/ --exclude vagrant/exchange/ \
  /weft-src/ /opt/weft/
cd /opt/weft
npm ci --no-audit --no-fund
npm link --no-audit --no-fund
weft version

install -m 644 vagrant/systemd/weft-*.service /etc/systemd/system/
systemctl daemon-reload
