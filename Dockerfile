# kerf: one image for every role on Kubernetes (operator, agent, gateway, worker).
# Build: docker build -t kerf:dev .   (see docs/kubernetes.md for kind and k3d)

# 1. compile TypeScript
FROM node:20-bookworm-slim AS build
WORKDIR /src
ENV ONNXRUNTIME_NODE_INSTALL=skip npm_config_fund=false npm_config_audit=false
COPY package.json package-lock.json .npmrc ./
# no install scripts: onnxruntime-node's would fetch CUDA libraries (its CPU build ships in the package);
# (.npmrc turns them off anyway); the compile runs below, once the sources are in
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p . && test -f dist/src/cli/main.js

# 2. production dependencies only
FROM node:20-bookworm-slim AS deps
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL=skip npm_config_fund=false npm_config_audit=false
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

# 3. the runtime: node, the compiled CLI, production node_modules; no compiler, no sources
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
RUN groupadd --gid 10001 kerf && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin kerf
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY package.json ./
COPY bin ./bin
RUN chmod 755 bin/kerf.js && ln -s /app/bin/kerf.js /usr/local/bin/kerf
USER 10001:10001
ENTRYPOINT ["kerf"]
CMD ["--help"]
