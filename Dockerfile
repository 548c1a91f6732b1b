# syntax=docker/dockerfile:1
# cdf-auth-gateway image: build with dev dependencies, ship dist/ + production dependencies only.
#   docker build -t cdf-auth-gateway .
#   docker run --read-only -v $PWD/gateway.yaml:/etc/cdf-auth-gateway/gateway.yaml:ro -p 8080:8080 cdf-auth-gateway
# The config must bind 0.0.0.0 (server.host, admin.host) to be reachable from outside the container.

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# production dependencies only; no install scripts run
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
LABEL org.opencontainers.image.title="cdf-auth-gateway" \
      org.opencontainers.image.description="Authentication gateway and reverse proxy for Cognite Data Fusion" \
      org.opencontainers.image.licenses="Apache-2.0"
# V8 sizes its heap from the memory it can see (the host's, when the container has no limit) and
# then defers full collections: an explicit cap keeps RSS bounded (bench/rss.mjs: ~145 MB peak
# under 100,000 distinct tokens). Raise it with NODE_OPTIONS for large tokens.cacheSize values.
# The young generation is pinned too: Node 24 sizes it from the heap limit (64 MB semi-spaces),
# and beside a 128 MB old space that forces a mark-compact every few dozen milliseconds (a
# quarter of the throughput). On Node 24, 8 MB semi-spaces keep the RSS of 6,000 distinct 10 KB
# tokens 18 MB lower than 16 MB did, at no throughput cost measured on one core. glibc's trim
# threshold is fixed at 128 KB: otherwise it grows with the largest block freed, and memory
# freed by V8's background threads stays with the process (another ~10 MB in the same row).
ENV NODE_ENV=production NODE_OPTIONS="--max-old-space-size=128 --max-semi-space-size=8" MALLOC_TRIM_THRESHOLD_=131072
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
# An unprivileged user with no home and no shell; numeric so runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid gateway --no-create-home --shell /usr/sbin/nologin gateway \
 && mkdir -p /etc/cdf-auth-gateway
# Nothing is written at run time (logs go to stdout), so the root file system may be read-only.
USER 10001:10001
EXPOSE 8080 9090
STOPSIGNAL SIGTERM
# slim has no curl: node itself asks the admin listener (port 9090, admin.host must be reachable
# on 127.0.0.1 inside the container, e.g. 0.0.0.0).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The cdf-auth-gateway CLI; it reads /etc/cdf-auth-gateway/gateway.yaml unless --config is given.
ENTRYPOINT ["node", "/app/dist/main.js"]
CMD []
