#!/usr/bin/env bash
# A host: the CNI plugin and podman, settings in /etc/default/weft-agent,
# the agent started.
#   agent.sh RACK DATACENTER
set -euo pipefail
# Vagrant runs this script from an upload of it alone: the helpers come
# from the copy weft.sh installed.
# shellcheck source-path=SCRIPTDIR source=join.sh
. /opt/weft/vagrant/provision/join.sh

rack=$1
datacenter=$2

export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 -q -y install --no-install-recommends containernetworking-plugins podman

wait_for_join
install_token host-token /etc/weft/token
{
  cat "$exchange/join.env"
  echo WEFT_TOKEN_FILE=/etc/weft/token
  echo "WEFT_RACK=$rack"
  echo "WEFT_DATACENTER=$datacenter"
} >/etc/default/weft-agent

weft install-cni
systemctl enable weft-agent.service
systemctl restart weft-agent.service
