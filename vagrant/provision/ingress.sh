#!/usr/bin/env bash
# The edge host (which runs weft-agent too): settings in
# /etc/default/weft-ingress, the ingress started.
#   ingress.sh RACK DATACENTER
set -euo pipefail
# Vagrant runs this script from an upload of it alone: the helpers come
# from the copy weft.sh installed.
# shellcheck source-path=SCRIPTDIR source=join.sh
. /opt/weft/vagrant/provision/join.sh

rack=$1
datacenter=$2

wait_for_join
install_token ingress-token /etc/weft/ingress-token
{
  cat "$exchange/join.env"
  echo WEFT_TOKEN_FILE=/etc/weft/ingress-token
  echo "WEFT_RACK=$rack"
  echo "WEFT_DATACENTER=$datacenter"
} >/etc/default/weft-ingress

systemctl enable weft-ingress.service
systemctl restart weft-ingress.service
