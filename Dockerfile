# Switchboard's image: built in one stage with every dependency, run from a second one that holds
# only the compiled server and its runtime dependencies, as the unprivileged `node` user.
# Build: docker build -t switchboard .     Run: docker run -p 6001:6001 -e SWITCHBOARD_APP_SECRET=... switchboard

FROM node:24-alpine AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
# No install scripts: `prepare` would compile before the sources are here.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY src ./src
RUN npx tsc -p tsconfig.json
RUN npm prune --omit=dev --no-audit --no-fund

FROM node:24-alpine
ENV NODE_ENV=production
WORKDIR /app
# Owned by root: the server cannot rewrite its own code.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
USER node
EXPOSE 6001
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["node", "dist/src/cli/healthcheck.js"]
# node itself is PID 1 (no npm or shell in between), so SIGTERM reaches the server and starts the drain.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/cli/main.js"]
