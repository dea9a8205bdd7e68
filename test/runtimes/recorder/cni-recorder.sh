#!/bin/sh
# A CNI plugin that records how the runtime called it, then behaves exactly
# like the real plugin of the same name. Installed as symlinks named after the
# plugins (bridge, host-local, portmap, ...) in a plugin dir the runtime is
# pointed at; recorder.env next to the links says where the real plugins are
# (REAL_DIR) and where records go (LOG_DIR). One file per call, so concurrent
# calls cannot interleave.
here=$(dirname "$0")
name=$(basename "$0")
. "$here/recorder.env"

# Keep stdin byte for byte (command substitution drops trailing newlines).
stdin=$(cat; echo x)
stdin=${stdin%x}

start=$(date +%s%N)
stdout=$(printf '%s' "$stdin" | "$REAL_DIR/$name")
rc=$?

record="$LOG_DIR/$start-$$-$name"
{
  echo "plugin=$name"
  echo "rc=$rc"
  echo "start=$start"
  echo "--env--"
  env | grep '^CNI_' | sort
  echo "--stdin--"
  printf '%s\n' "$stdin"
  echo "--stdout--"
  printf '%s\n' "$stdout"
} >"$record.tmp" && mv "$record.tmp" "$record"

[ -n "$stdout" ] && printf '%s\n' "$stdout"
exit $rc
