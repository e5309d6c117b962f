#!/bin/sh
# Writes Mosquitto's password file from the environment (OCTOPUS_MQTT_USERNAME /
# OCTOPUS_MQTT_PASSWORD), so no hashed secret is kept in the repository, then starts the
# broker with deploy/mosquitto/mosquitto.conf.
set -eu
: "${OCTOPUS_MQTT_USERNAME:?set OCTOPUS_MQTT_USERNAME}"
: "${OCTOPUS_MQTT_PASSWORD:?set OCTOPUS_MQTT_PASSWORD}"
umask 077
mosquitto_passwd -c -b /mosquitto/passwd/passwd "$OCTOPUS_MQTT_USERNAME" "$OCTOPUS_MQTT_PASSWORD"
chown mosquitto:mosquitto /mosquitto/passwd/passwd 2>/dev/null || true
exec mosquitto -c /mosquitto/config/mosquitto.conf
