# Nexus Runtime node image: one image for workers (default) and the gateway.
#   docker build -t nexus-runtime .
#   docker run --rm -e NATS_URL=nats://host:4222 nexus-runtime               # worker
#   docker run --rm -p 8080:8080 nexus-runtime npm run gateway               # gateway
FROM node:20-slim

WORKDIR /app
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false

# dependencies first, so a source change does not reinstall them
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY . .
RUN mkdir -p .nexus-data && chown node:node .nexus-data

USER node
EXPOSE 8080
CMD ["npm", "run", "worker"]
