# Nexus Runtime node image: one image for workers (default) and the gateway, running the
# compiled JavaScript (`npm run build`), not the TypeScript sources through a loader.
#   docker build -t nexus-runtime .
#   docker run --rm -e NATS_URL=nats://host:4222 nexus-runtime                          # worker
#   docker run --rm -p 8080:8080 nexus-runtime node dist/bin/gateway.js                 # gateway

# build: the compiler is a dev dependency
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

FROM node:20-slim
WORKDIR /app
# NODE_OPTIONS: a worker's heap sized for its live set, and a young generation sized for
# its short-lived messages (see bin/Dist.ts, nodeOptions); without the first V8 sizes the
# heap from the host's memory and a worker's resident set saws up to about twice as high,
# without the second the collector takes up to a fifth of the CPU. Override with
# -e NODE_OPTIONS=... if a process needs more.
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NODE_OPTIONS="--max-old-space-size=1024 --max-semi-space-size=64"

# dependencies first, so a source change does not reinstall them
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# the sources stay (the npm scripts and `npx nexus` run them); processes run dist/
COPY . .
COPY --from=build /app/dist ./dist
RUN mkdir -p .nexus-data && chown node:node .nexus-data

USER node
EXPOSE 8080
CMD ["node", "dist/bin/worker.js"]
