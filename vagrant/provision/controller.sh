#!/usr/bin/env bash
# The controller: settings in /etc/default/weft-controller, the unit started,
# then a host token and an ingress token written with the join settings to
# the exchange folder, where every other machine's provisioning waits for
# them. Running it again writes fresh tokens (the old ones stay valid until
# they expire).
#   controller.sh ADVERTISE_IP
set -euo pipefail

advertise=$1
exchange=/weft-exchange

# Hosts reach the controller on the management segment; without this the
# join command would name the address of Vagrant's NAT interface, which has
# the default route.
cat >/etc/default/weft-controller <<CONF
WEFT_ADVERTISE=$advertise
CONF
systemctl enable weft-controller.service
systemctl restart weft-controller.service

ready=no
for _ in $(seq 1 60); do
  if curl -fsS -o /dev/null http://127.0.0.1:7080/readyz; then
    ready=yes
    break
  fi
  sleep 1
done
if [ "$ready" != yes ]; then
  journalctl -u weft-controller.service --no-pager -n 50 >&2
  echo "controller.sh: weft-controller is not ready after 60 s" >&2
  exit 1
fi

# One JSON field of `weft token create --json`.
field() { node -e 'process.stdout.write(String(JSON.parse(process.argv[1])[process.argv[2]]))' "$1" "$2"; }

host_json=$(weft token create --ttl 24h --description vagrant --json)
ingress_json=$(weft token create --role ingress --ttl 24h --description vagrant --json)

umask 077
mkdir -p "$exchange"
field "$host_json" token >"$exchange/host-token.new"
field "$ingress_json" token >"$exchange/ingress-token.new"
{
  echo "WEFT_SERVER=$(field "$host_json" server)"
  echo "WEFT_CA_CERT_HASH=$(field "$host_json" caCertHash)"
} >"$exchange/join.env.new"
# join.env last: the others wait for it and then read the tokens.
mv "$exchange/host-token.new" "$exchange/host-token"
mv "$exchange/ingress-token.new" "$exchange/ingress-token"
mv "$exchange/join.env.new" "$exchange/join.env"
weft status
