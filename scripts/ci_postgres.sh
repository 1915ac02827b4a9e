#!/usr/bin/env bash
# Start a PostgreSQL server for the test suite and print the URL the tests read.
#
#   export "$(sudo scripts/ci_postgres.sh)"      # or: eval "$(scripts/ci_postgres.sh)" as root
#   pytest tests/integration
#
# Idempotent; run as root in a container or CI runner without systemd. Installs the distribution's
# postgresql package when no server binaries are found (apt-get), starts a cluster listening on
# 127.0.0.1:$PORT, creates the role lotline/lotline (with CREATEDB, so tests may make throw-away databases)
# and the database lotline_test, and checks a password login over TCP. Progress goes to stderr; stdout gets
# exactly one line, LOTLINE_TEST_POSTGRES_URL=postgresql+psycopg://lotline:lotline@127.0.0.1:5432/lotline_test
#
# Environment (all optional):
#   LOTLINE_PG_PORT     port to listen on (default 5432)
#   LOTLINE_PG_METHOD   auto (default: pg_ctlcluster when the Debian wrappers exist, else initdb) | cluster | initdb
#   LOTLINE_PG_DATA     data directory for the initdb method (default /tmp/lotline-pgdata-$PORT)
set -euo pipefail

PORT="${LOTLINE_PG_PORT:-5432}"
METHOD="${LOTLINE_PG_METHOD:-auto}"
ROLE=lotline
PASSWORD=lotline
DATABASE=lotline_test
URL="postgresql+psycopg://${ROLE}:${PASSWORD}@127.0.0.1:${PORT}/${DATABASE}"

log() { printf 'ci_postgres: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (it may install packages and switches to the postgres user)"
cd /  # the postgres user must be able to read the working directory

as_postgres() { runuser -u postgres -- "$@"; }

# --- 1. server binaries -----------------------------------------------------------------------------

pg_bindir() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$dir" ] && [ -x "$dir/postgres" ]; then
        echo "$dir"
    elif command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/postgres" ]; then
        pg_config --bindir
    elif command -v postgres >/dev/null && command -v initdb >/dev/null; then
        dirname "$(readlink -f "$(command -v postgres)")"
    fi
}

BINDIR="$(pg_bindir)"
if [ -z "$BINDIR" ]; then
    log "no PostgreSQL server found; installing the postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q postgresql >&2
    BINDIR="$(pg_bindir)"
    [ -n "$BINDIR" ] || die "postgresql installed but no server binary found under /usr/lib/postgresql"
fi
VERSION="$("$BINDIR/postgres" --version | awk '{print $3}' | cut -d. -f1)"
log "using PostgreSQL $VERSION ($BINDIR)"

id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --create-home --shell /bin/bash postgres

if [ "$METHOD" = auto ]; then
    if command -v pg_ctlcluster >/dev/null && command -v pg_createcluster >/dev/null; then
        METHOD=cluster
    else
        METHOD=initdb
    fi
fi

# --- 2. a running server on 127.0.0.1:$PORT -----------------------------------------------------------

# psql as the superuser over the local socket (peer authentication / trust).
SOCKET_DIR=/var/run/postgresql

start_with_cluster() {
    # Without systemd nothing recreates the socket directory after a restart of the container.
    install -d -o postgres -g postgres -m 2775 /var/run/postgresql
    local cluster
    cluster="$(pg_lsclusters -h | awk -v v="$VERSION" -v p="$PORT" '$1 == v && $3 == p {print $2; exit}')"
    if [ -z "$cluster" ]; then
        cluster="lotline$PORT"
        if pg_lsclusters -h | awk -v v="$VERSION" -v c="$cluster" '$1 == v && $2 == c {found=1} END {exit !found}'; then
            die "cluster $VERSION/$cluster exists but does not use port $PORT"
        fi
        # The Debian default 'main' is used when it sits on $PORT; otherwise a cluster of our own.
        log "creating cluster $VERSION/$cluster on port $PORT"
        pg_createcluster --port "$PORT" "$VERSION" "$cluster" -- --auth-local=peer --auth-host=scram-sha-256 >&2
    fi
    if pg_lsclusters -h | awk -v v="$VERSION" -v c="$cluster" '$1 == v && $2 == c && $4 == "online" {found=1} END {exit !found}'; then
        log "cluster $VERSION/$cluster already running on port $PORT"
    else
        log "starting cluster $VERSION/$cluster"
        pg_ctlcluster "$VERSION" "$cluster" start >&2
    fi
    # Debian clusters listen on localhost and accept scram-sha-256 passwords over TCP from 127.0.0.1.
}

start_with_initdb() {
    local data="${LOTLINE_PG_DATA:-/tmp/lotline-pgdata-$PORT}"
    SOCKET_DIR="$data"
    if [ ! -s "$data/PG_VERSION" ]; then
        log "initialising $data"
        install -d -o postgres -g postgres -m 0700 "$data"
        as_postgres "$BINDIR/initdb" -D "$data" -U postgres -E UTF8 --locale=C.UTF-8 \
            --auth-local=trust --auth-host=scram-sha-256 >&2
    fi
    if as_postgres "$BINDIR/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        log "server in $data already running"
    else
        log "starting the server in $data on 127.0.0.1:$PORT"
        as_postgres "$BINDIR/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start \
            -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$data" >&2 \
            || { tail -n 20 "$data/server.log" >&2; die "the server did not start"; }
    fi
}

case "$METHOD" in
    cluster) start_with_cluster ;;
    initdb) start_with_initdb ;;
    *) die "LOTLINE_PG_METHOD must be auto, cluster or initdb, not '$METHOD'" ;;
esac

for _ in $(seq 1 60); do
    "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break
    sleep 0.5
done
"$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PORT" || die "nothing answers on 127.0.0.1:$PORT"

# --- 3. role and database ------------------------------------------------------------------------------

superuser_psql() { as_postgres "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKET_DIR" -p "$PORT" -d postgres "$@"; }

log "ensuring role $ROLE and database $DATABASE"
superuser_psql >&2 <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
        CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
    ELSE
        ALTER ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
    END IF;
END
\$\$;
SELECT 'CREATE DATABASE $DATABASE OWNER $ROLE ENCODING ''UTF8'' TEMPLATE template0'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DATABASE') \gexec
ALTER DATABASE $DATABASE OWNER TO $ROLE;
SQL

# The tests log in exactly like this: password over TCP.
PGPASSWORD="$PASSWORD" "$BINDIR/psql" -X -q -At -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d "$DATABASE" \
    -c "SELECT 1" >/dev/null || die "cannot log in as $ROLE over TCP on 127.0.0.1:$PORT"
log "ready"
echo "LOTLINE_TEST_POSTGRES_URL=$URL"
