#!/bin/sh
# Starts Mosquitto with the configuration written by `octopus mqtt-config` (one principal
# per gateway, collector and person; docs/deployment.md): the password file, the ACL
# file and mosquitto.conf are mounted read-only at /octopus/generated and copied where
# the "mosquitto" user can read them (the password file stays 0600).
set -eu
src=/octopus/generated
dst=/mosquitto/config/octopus
for f in passwd acl mosquitto.conf; do
  [ -f "$src/$f" ] || { echo "missing $src/$f: run octopus mqtt-config first (docs/deployment.md)" >&2; exit 1; }
done
umask 077
mkdir -p "$dst"
cp "$src/passwd" "$src/acl" "$src/mosquitto.conf" "$dst/"
chmod 600 "$dst/passwd"
chmod 644 "$dst/acl" "$dst/mosquitto.conf"
chown -R mosquitto:mosquitto "$dst" 2>/dev/null || true
exec mosquitto -c "$dst/mosquitto.conf"
