#!/bin/sh
# Runs once, when a Postgres container initialises its data: the demo fleet's tenant databases
# on this host, tenant_0001 .. tenant_NNNN (TENANTS_PER_HOST, default 50). The registry rows
# that point at them are written by the registry-seed service (deploy/compose/seed-registry.mjs).
set -eu
count="${TENANTS_PER_HOST:-50}"
i=1
while [ "$i" -le "$count" ]; do
  printf 'CREATE DATABASE tenant_%04d;\n' "$i"
  i=$((i + 1))
done | psql -v ON_ERROR_STOP=1 -q -U "$POSTGRES_USER" -d postgres
echo "created $count tenant databases"
