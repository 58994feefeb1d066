#!/bin/sh
# LocalStack's ready hook (compose.localstack.yml mounts it in /etc/localstack/init/ready.d): the two
# Secrets Manager secrets the localstack stage reads at cold start, as a deployed stage does
# (serverless.yml params.localstack, lib/config.ts). The Upstash URL is the gateway as the functions
# reach it on the compose network.
set -eu
awslocal secretsmanager create-secret --name fcfs-coupons/localstack/upstash \
  --secret-string "{\"url\": \"http://upstash:8079\", \"token\": \"${FCFS_UPSTASH_TOKEN}\"}" >/dev/null
awslocal secretsmanager create-secret --name fcfs-coupons/localstack/admin \
  --secret-string "{\"adminToken\": \"${FCFS_ADMIN_TOKEN}\"}" >/dev/null
echo "fcfs-coupons: secrets fcfs-coupons/localstack/upstash and fcfs-coupons/localstack/admin created"
