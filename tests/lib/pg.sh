# A throw-away PostgreSQL cluster for one test: initdb in a temporary
# directory, Unix socket there (no TCP), stopped on exit, also on failure.
# As root the server runs as the postgres user. A missing server skips the
# test (exit 77) on a developer machine and fails it in CI (CI=true).
# Sets PG_CONNINFO, PG_DIR and pg_psql.
tm_pg_start() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        [ "${CI:-}" = true ] && tm_fail "PostgreSQL is not installed (CI must run the PostgreSQL tests)"
        echo "SKIP: no PostgreSQL server installed"
        exit 77
    fi
    PG_BIN=$bin
    PG_DIR=$(mktemp -d /tmp/tm-pg.XXXXXX)
    PG_AS=()
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || tm_fail "running as root needs the postgres user"
        chown postgres "$PG_DIR"
        PG_AS=(runuser -u postgres --)
    fi
    chmod 755 "$PG_DIR"
    "${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres >"$PG_DIR/initdb.log" 2>&1 ||
        { cat "$PG_DIR/initdb.log"; tm_fail "initdb"; }
    PG_PORT=$((20000 + RANDOM % 20000))
    trap tm_pg_stop EXIT
    tm_pg_ctl start || tm_fail "PostgreSQL did not start"
    PG_CONNINFO="host=$PG_DIR port=$PG_PORT dbname=postgres user=postgres"
}

tm_pg_ctl() { # start | stop | restart
    "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
        -o "-k $PG_DIR -p $PG_PORT -c listen_addresses='' -c max_connections=50" "$@" \
        >/dev/null 2>&1 || { cat "$PG_DIR/server.log" >&2; return 1; }
}

tm_pg_stop() {
    # the servers of the test first, then the database under them
    [ "$(type -t cmp_cleanup)" = function ] && cmp_cleanup
    [ -n "${PG_DIR:-}" ] || return 0
    "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
    PG_DIR=
    return 0
}

pg_psql() { # SQL -> tab-separated rows
    psql "$PG_CONNINFO" -XAtq -F "$(printf '\t')" -c "$1"
}
