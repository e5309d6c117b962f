#!/bin/bash
# Runs once, when the influxdb:2 image initialises a fresh volume. Creates the task that
# keeps the 1-minute rollup `climate_1m` (field value = the minute's mean, same tags as
# `climate`), which the long-range dashboard panels read (Grafana variable "Resolution").
# It recomputes the last 15 minutes every minute, so samples replayed late by a spool or
# buffer (a short outage) are included; writes are idempotent. After a longer outage,
# backfill with the InfluxQL statement in docs/grafana.md.
set -euo pipefail
cat > /tmp/climate_1m.flux <<FLUX
option task = {name: "climate_1m", every: 1m, offset: 10s}

from(bucket: "${DOCKER_INFLUXDB_INIT_BUCKET}")
    |> range(start: -15m)
    |> filter(fn: (r) => r._measurement == "climate" and r._field == "value")
    |> aggregateWindow(every: 1m, fn: mean, createEmpty: false, timeSrc: "_start")
    |> set(key: "_measurement", value: "climate_1m")
    |> to(bucket: "${DOCKER_INFLUXDB_INIT_BUCKET}", org: "${DOCKER_INFLUXDB_INIT_ORG}")
FLUX
influx task create --org "$DOCKER_INFLUXDB_INIT_ORG" --file /tmp/climate_1m.flux
