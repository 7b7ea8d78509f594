#!/usr/bin/env bash
#
# nightly_backup.sh - full base backup of the meta-db Postgres cluster.
#
# Runs from cron on the current primary at 02:00 UTC:
#
#   0 2 * * *  postgres  /opt/kestrel/bin/nightly_backup.sh >> /var/log/kestrel/backup.log 2>&1
#
# What it does:
#   1. refuses to run on a replica (backups are taken from the primary only),
#   2. pushes a compressed base backup to the off-site bucket with WAL-G,
#   3. deletes base backups older than the retention window, keeping the
#      WAL segments needed to recover any point inside that window,
#   4. pings the health check so that a missed night raises an alert.
#
# WAL archiving itself is continuous and configured in postgresql.conf
# (archive_command = 'wal-g wal-push %p'); this script does not touch it.
# The restore procedure is in howto/restore-postgres-from-backup.md.

set -euo pipefail

PGDATA="${PGDATA:-/var/lib/postgresql/15/main}"
RETAIN_DAYS="${RETAIN_DAYS:-14}"
HEALTHCHECK_URL="${HEALTHCHECK_URL:?set HEALTHCHECK_URL in /etc/kestrel/backup.env}"

log() {
    printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"
}

# Tell the health check we started, so a hanging job is noticed too.
curl -fsS -m 10 --retry 3 "${HEALTHCHECK_URL}/start" > /dev/null || true

# 1. Only the primary takes backups.
if [[ "$(psql -Atc 'select pg_is_in_recovery()')" == "t" ]]; then
    log "this node is a replica, skipping"
    exit 0
fi

# 2. Base backup. WAL-G reads bucket and credentials from /etc/wal-g.d/env.
log "starting base backup of ${PGDATA}"
started=$(date +%s)
wal-g backup-push "${PGDATA}"
log "base backup finished in $(( $(date +%s) - started )) seconds"

# 3. Retention: keep everything newer than RETAIN_DAYS.
cutoff=$(date -u -d "-${RETAIN_DAYS} days" +%Y-%m-%dT%H:%M:%SZ)
log "removing backups older than ${cutoff}"
wal-g delete before FIND_FULL "${cutoff}" --confirm

# 4. Report success with the current backup list attached.
wal-g backup-list --json | curl -fsS -m 10 --retry 3 --data-binary @- "${HEALTHCHECK_URL}" > /dev/null
log "done"
