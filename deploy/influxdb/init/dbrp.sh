#!/bin/bash
# Runs once, when the influxdb:2 image initialises a fresh volume (after org, bucket and
# admin token are set up from DOCKER_INFLUXDB_INIT_*). Maps the InfluxQL database
# "$DOCKER_INFLUXDB_INIT_BUCKET" (retention policy "autogen") to the bucket, so that
# Grafana's InfluxQL queries find it.
set -euo pipefail
bucket_id=$(influx bucket list --name "$DOCKER_INFLUXDB_INIT_BUCKET" --hide-headers | cut -f1)
influx v1 dbrp create --bucket-id "$bucket_id" --db "$DOCKER_INFLUXDB_INIT_BUCKET" --rp autogen --default
