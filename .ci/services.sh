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

# The real okerr clients from PyPI (okerrupdate: okerrupdate, okerrapi; okerrclient) in a
# virtualenv at target/okerr-clients-venv, reused while it works. Exports
# OKERR_TEST_CLIENTS_BIN (the venv's bin/) and OKERR_REQUIRE_CLIENTS=1, so the tests that
# run the clients fail instead of skipping.
ensure_python_clients() {
    local venv
    venv="$(pwd)/target/okerr-clients-venv"
    if ! "$venv/bin/python" -c 'import okerrupdate, okerrclient' >/dev/null 2>&1 \
        || [ ! -x "$venv/bin/okerrupdate" ] || [ ! -x "$venv/bin/okerrclient" ] \
        || [ ! -x "$venv/bin/okerrapi" ]; then
        echo "ci: installing okerrupdate and okerrclient in $venv" >&2
        rm -rf "$venv"
        mkdir -p "$(dirname "$venv")"
        if ! command -v python3 >/dev/null 2>&1 || ! python3 -m venv "$venv" >/dev/null 2>&1; then
            echo "ci: installing python3-venv" >&2
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
            rm -rf "$venv"
            python3 -m venv "$venv" || { echo "ci: python3 -m venv failed" >&2; return 1; }
        fi
        "$venv/bin/pip" install -q --disable-pip-version-check okerrupdate==2.1.7 okerrclient==2.0.164 \
            || { echo "ci: pip install okerrupdate okerrclient failed" >&2; return 1; }
    fi
    export OKERR_TEST_CLIENTS_BIN="$venv/bin"
    export OKERR_REQUIRE_CLIENTS=1
}

# Python's aiosmtpd, the real SMTP server that receives the alert e-mails in the tests, in
# a virtualenv at target/okerr-mail-venv. Exports OKERR_TEST_AIOSMTPD (its python) and
# OKERR_REQUIRE_SMTP=1, so the mail tests fail instead of skipping.
ensure_mail_sink() {
    local venv
    venv="$(pwd)/target/okerr-mail-venv"
    if ! "$venv/bin/python" -c 'import aiosmtpd' >/dev/null 2>&1; then
        echo "ci: installing aiosmtpd in $venv" >&2
        rm -rf "$venv"
        mkdir -p "$(dirname "$venv")"
        python3 -m venv "$venv" || { echo "ci: python3 -m venv failed" >&2; return 1; }
        "$venv/bin/pip" install -q --disable-pip-version-check aiosmtpd==1.4.6 \
            || { echo "ci: pip install aiosmtpd failed" >&2; return 1; }
    fi
    export OKERR_TEST_AIOSMTPD="$venv/bin/python"
    export OKERR_REQUIRE_SMTP=1
}

# Headless chromium and its WebDriver for the browser tests of the web pages: Debian's
# chromium and chromium-driver, installed when /usr/bin/chromedriver is missing. Exports
# OKERR_TEST_CHROMEDRIVER, OKERR_TEST_CHROMIUM and OKERR_REQUIRE_BROWSER=1, so the browser
# tests fail instead of skipping.
ensure_browser() {
    if [ ! -x /usr/bin/chromedriver ] || [ ! -x /usr/bin/chromium ]; then
        echo "ci: installing chromium and chromium-driver" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
            || { echo "ci: apt-get install chromium chromium-driver failed" >&2; return 1; }
    fi
    export OKERR_TEST_CHROMEDRIVER=/usr/bin/chromedriver
    export OKERR_TEST_CHROMIUM=/usr/bin/chromium
    export OKERR_REQUIRE_BROWSER=1
}

# swaks, the SMTP client the tests of updates by e-mail send with: Debian's package,
# installed when missing. Exports OKERR_TEST_SWAKS and OKERR_REQUIRE_SWAKS=1, so those
# tests fail instead of skipping.
ensure_swaks() {
    if [ ! -x /usr/bin/swaks ]; then
        echo "ci: installing swaks" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq swaks >/dev/null \
            || { echo "ci: apt-get install swaks failed" >&2; return 1; }
    fi
    export OKERR_TEST_SWAKS=/usr/bin/swaks
    export OKERR_REQUIRE_SWAKS=1
}

# What tests/tests/limits.rs and outage.rs need: prlimit (util-linux) and the right to mount
# a tmpfs (root, as CI runs here). When a test mount works, exports OKERR_REQUIRE_MOUNT=1,
# so the disk-full test fails instead of skipping.
ensure_mount() {
    command -v prlimit >/dev/null || { echo "ci: prlimit (util-linux) is missing" >&2; return 1; }
    local dir
    dir=$(mktemp -d)
    if mount -t tmpfs -o size=1m tmpfs "$dir" 2>/dev/null; then
        umount "$dir"
        export OKERR_REQUIRE_MOUNT=1
    else
        echo "ci: cannot mount a tmpfs here: the disk-full test will skip" >&2
    fi
    rmdir "$dir"
}
