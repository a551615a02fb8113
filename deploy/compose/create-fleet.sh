#!/bin/sh
# Runs once, when the Postgres container initialises: a demo fleet of tenant databases and the
# registry file the planner reads. Database URLs carry no password (executors use PGPASSWORD).
set -eu
count="${SLUICE_DEMO_TENANTS:-50}"
out=/fleet/tenants.json
printf '[' > "$out.tmp"
i=1
while [ "$i" -le "$count" ]; do
  name=$(printf 'tenant_%04d' "$i")
  psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -qc "CREATE DATABASE $name"
  [ "$i" -gt 1 ] && printf ',' >> "$out.tmp"
  printf '\n {"tenantId":"%s","databaseUrl":"postgres://%s@postgres:5432/%s"}' "$name" "$POSTGRES_USER" "$name" >> "$out.tmp"
  i=$((i + 1))
done
printf '\n]\n' >> "$out.tmp"
mv "$out.tmp" "$out"
