# Helpers that make sure the services the tests need are there. Sourced by .ci/test.

# PostgreSQL on 127.0.0.1:5432 with trust auth and a database `test`: starts the installed
# cluster, or installs Debian's postgresql first. Exports OKERR_TEST_PG_URL and
# OKERR_REQUIRE_PG=1, so the PostgreSQL tests fail instead of skipping.
ensure_postgres() {
    local url="postgres://postgres@127.0.0.1:5432/test"
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        echo "ci: installing postgresql" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
        local version
        version=$(ls /etc/postgresql | sort -V | tail -n 1)
        local hba="/etc/postgresql/$version/main/pg_hba.conf"
        if ! grep -q "okerr-ci" "$hba"; then
            # A fresh cluster asks for passwords on TCP; the tests connect as postgres.
            sed -i '1i host all all 127.0.0.1/32 trust # okerr-ci\nhost all all ::1/128 trust # okerr-ci' "$hba"
        fi
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        for _ in $(seq 1 30); do
            pg_isready -h 127.0.0.1 -p 5432 -q && break
            sleep 1
        done
    fi
    if ! psql "$url" -qtAc 'select 1' >/dev/null 2>&1; then
        psql -h 127.0.0.1 -U postgres -d postgres -qc 'create database test' >/dev/null 2>&1 \
            || su postgres -c "psql -qc 'create database test'" >/dev/null 2>&1 || true
    fi
    psql "$url" -qtAc 'select 1' >/dev/null || { echo "ci: PostgreSQL does not answer at $url" >&2; return 1; }
    export OKERR_TEST_PG_URL="$url"
    export OKERR_REQUIRE_PG=1
}
