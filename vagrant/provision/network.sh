#!/usr/bin/env bash
# The machine's lab routes, kept across reboots: a oneshot unit replays them
# at boot, after the interfaces Vagrant configured are up.
#   network.sh [--forward] "PREFIX via GATEWAY"...
# --forward makes the machine a router (the WAN and datacenter routers).
set -euo pipefail

forward=no
if [ "${1:-}" = --forward ]; then
  forward=yes
  shift
fi

if [ "$forward" = yes ]; then
  printf 'net.ipv4.ip_forward = 1\n' >/etc/sysctl.d/60-weft-lab-router.conf
  sysctl -q -p /etc/sysctl.d/60-weft-lab-router.conf
fi

unit=/etc/systemd/system/weft-lab-routes.service
{
  printf '[Unit]\nDescription=routes of the weft lab topology\n'
  printf 'Wants=network-online.target\nAfter=network-online.target\n\n'
  printf '[Service]\nType=oneshot\nRemainAfterExit=yes\n'
  for route in "$@"; do
    # "PREFIX via GATEWAY": word splitting is the point here.
    read -r prefix via gateway <<<"$route"
    if [ "$via" != via ] || [ -z "$gateway" ]; then
      echo "network.sh: \"$route\" is not \"PREFIX via GATEWAY\"" >&2
      exit 2
    fi
    printf 'ExecStart=/usr/sbin/ip route replace %s via %s\n' "$prefix" "$gateway"
  done
  printf '\n[Install]\nWantedBy=multi-user.target\n'
} >"$unit.new"
mv "$unit.new" "$unit"
systemctl daemon-reload
systemctl enable weft-lab-routes.service
systemctl restart weft-lab-routes.service
ip route show
