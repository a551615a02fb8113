# One image for the three services; the command picks one:
#   docker run sluice node services/planner/dist/main.js
# Build steps are the ones CI runs (npm ci, npm run build).
FROM node:22-bookworm-slim AS build
WORKDIR /app
ENV TURBO_TELEMETRY_DISABLED=1
COPY package.json package-lock.json turbo.json tsconfig.json tsconfig.base.json eslint.config.js ./
COPY packages ./packages
COPY services ./services
COPY test/package.json ./test/package.json
RUN npm ci --no-audit --no-fund && npm run build

FROM node:22-bookworm-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/packages ./packages
COPY --from=build /app/services ./services
COPY --from=build /app/test/package.json ./test/package.json
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts \
  && rm -rf packages/*/src services/*/src packages/*/test services/*/test
COPY migrations ./migrations
USER node
ENV SLUICE_MIGRATIONS_DIR=/app/migrations NATS_URL=nats://nats:4222
CMD ["node", "services/executor/dist/main.js"]
