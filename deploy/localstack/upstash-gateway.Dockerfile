# The Upstash stand-in of compose.localstack.yml (deploy/localstack/upstash-gateway.ts): the project's
# gateway and the two packages it runs on, at the lockfile's versions. Built from the repository root
# (.dockerignore sends only these files).
FROM node:22-slim
WORKDIR /app
RUN echo '{"private": true, "type": "module"}' > package.json \
 && npm install --no-audit --no-fund --omit=dev ioredis@5.11.1 tsx@4.23.15
COPY localstack/upstash-gateway.ts localstack/
COPY localstack/gateway/ localstack/gateway/
COPY deploy/localstack/upstash-gateway.ts deploy/localstack/
USER node
EXPOSE 8079
CMD ["node", "--import", "tsx", "deploy/localstack/upstash-gateway.ts"]
