# Tollgate on a current Node LTS. One image for the production services; the command picks one:
#   serve gateway (default: the device gateway and the admin API) | serve authsvc (the realm) | init
# The health check asks the service's /readyz (tollgate ready); a realm container overrides it with
# `tollgate ready authsvc` (docker-compose.yml does). `tollgate up` is for development only.
FROM node:24-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 compiles its native addon from source.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY shared ./shared
COPY gateway ./gateway
COPY authsvc ./authsvc
COPY admin ./admin
COPY cli ./cli
COPY helper ./helper
COPY tools ./tools
COPY console ./console
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production \
    TOLLGATE_DATA_DIR=/var/lib/tollgate \
    TOLLGATE_PKI_DIR=/etc/tollgate/certs
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN chmod 755 /app/dist/cli/main.js /app/dist/device/docker-credential-tollgate.js \
 && ln -s /app/dist/cli/main.js /usr/local/bin/tollgate \
 && ln -s /app/dist/device/docker-credential-tollgate.js /usr/local/bin/docker-credential-tollgate \
 && mkdir -p /var/lib/tollgate /etc/tollgate/certs /run/tollgate/kek && chown -R node:node /var/lib/tollgate /etc/tollgate /run/tollgate
USER node
# Device gateway (mutual TLS), admin API, realm; metrics of the gateway process and of the realm.
EXPOSE 8443 8442 5001 9464 9465
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 CMD ["node", "/app/dist/cli/main.js", "ready", "gateway", "admin"]
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["serve", "gateway"]
