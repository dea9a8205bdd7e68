# Sourced by agent.sh and ingress.sh: waits for the join settings the
# controller's provisioning writes to the exchange folder.
# shellcheck shell=bash
exchange=/weft-exchange

wait_for_join() {
  for _ in $(seq 1 1800); do
    [ -s "$exchange/join.env" ] && return 0
    sleep 1
  done
  echo "no $exchange/join.env after 30 minutes: provision the controller (vagrant provision controller)" >&2
  return 1
}

# install_token SOURCE DEST: a token file only root reads, as the README asks.
install_token() {
  install -d -m 700 /etc/weft
  install -m 600 /dev/null "$2"
  cat "$exchange/$1" >"$2"
}
