# One image for every tradecore service. The TypeScript runs through tsx (a runtime dependency),
# so there is no build step: the image is the sources plus the production dependencies.
#   docker build -t tradecore .
#   docker run --rm -p 8080:8080 tradecore                        # embedded: tradecore start
#   docker run --rm --env-file .env tradecore serve projector     # one service, URLs from the env
# docker-compose.yml runs one container per service from this image (docs/operations.md).
FROM node:20-slim

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    TRADECORE_DATA_DIR=/data

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY tsconfig.json ./
COPY domain ./domain
COPY projections ./projections
COPY adapters ./adapters
COPY services ./services

RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
EXPOSE 8080

# Node 20 has fetch: no curl in the slim image. /health/ready checks every dependency the service uses.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health/ready').then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# SIGTERM reaches node directly (exec form): `docker stop` shuts the service down gracefully.
ENTRYPOINT ["node", "services/cli/bin.js"]
CMD ["start"]
