# syntax=docker/dockerfile:1
# Gateway / collector image (one image, two commands: `start`, `collect`).
# Stage 1 installs production dependencies only; stage 2 is the runtime, as non-root.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production OCTOPUS_DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY drivers ./drivers
COPY config ./config
COPY deploy/octopus ./deploy/octopus
# Generated dashboards: the web page reads their uids for its Grafana links.
COPY dashboards/generated ./dashboards/generated
# /data: archives (the NAS in compose); /var/lib/octopus: spool and InfluxDB buffer.
# Created here, owned by node, so that volumes mounted on them start writable.
RUN mkdir -p /data /var/lib/octopus && chown node:node /data /var/lib/octopus
USER node
EXPOSE 8080 8081
# Probes the gateway's API (OCTOPUS_HTTP_PORT) or, for `collect`, the collector's
# (OCTOPUS_HEALTH_PORT = collector.http_port): 200 only when status is ok.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD node -e "const p=process.env.OCTOPUS_HEALTH_PORT||process.env.OCTOPUS_HTTP_PORT||8080;fetch('http://127.0.0.1:'+p+'/api/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "bin/octopus.js"]
CMD ["start"]
