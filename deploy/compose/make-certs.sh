#!/usr/bin/env bash
# make-certs.sh: every certificate deploy/compose mounts, from one keyward local CA.
#
#   ./make-certs.sh              CA + all pairs (existing ones are kept), and .env if missing
#   ./make-certs.sh --renew      re-issue every pair from the existing CA (hot-reload demo)
#   ./make-certs.sh --overwrite  new CA and new pairs (everything issued before stops verifying)
#   ./make-certs.sh --dir DIR    write somewhere else than ./pki
#
# Needs Python with keyward importable: the repository's .venv if there is one,
# else $PYTHON, else python3 (run from a clone with `pip install -e .` done).
#
# What it writes (each pair directory holds tls.crt, tls.key and ca.crt, installed
# the way keyward installs renewals: a `..data` symlink swapped atomically):
#
#   pki/ca.crt, pki/ca.key  the local CA (`starter.py pki bootstrap`); ca.key is never mounted
#   pki/server/             bootstrap server pair, CN localhost, SANs localhost + 127.0.0.1,
#                           serverAuth: the Temporal frontend's certificate
#   pki/client/             bootstrap client pair, CN keyward-worker: the worker's certificate
#   pki/internode/          serverAuth + clientAuth, SANs temporal, localhost, 127.0.0.1:
#                           Temporal's internode certificate (also its system worker's
#                           client certificate, hence both usages)
#   pki/ui/                 client pair, CN temporal-ui: the Web UI's connection to the frontend
#   pki/admin/              client pair, CN temporal-admin: the `temporal` CLI in admin-tools
#
# `starter.py pki bootstrap` makes the CA, server and client pairs; `starter.py pki
# issue` makes the other three from the same CA.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PKI_DIR="$HERE/pki"
MODE=create

usage() {
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case "$1" in
        --dir) PKI_DIR="$2"; shift 2 ;;
        --renew) MODE=renew; shift ;;
        --overwrite) MODE=overwrite; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "make-certs.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done

if [ -z "${PYTHON:-}" ]; then
    if [ -x "$REPO/.venv/bin/python" ]; then
        PYTHON="$REPO/.venv/bin/python"
    else
        PYTHON=python3
    fi
fi

mkdir -p "$PKI_DIR"
PKI_DIR="$(cd "$PKI_DIR" && pwd)"
cd "$REPO"

# 1. The CA, the server pair and the client pair: exactly what `pki bootstrap` writes.
if [ "$MODE" = overwrite ]; then
    "$PYTHON" starter.py pki bootstrap --dir "$PKI_DIR" --overwrite
elif [ ! -e "$PKI_DIR/ca.crt" ] && [ ! -e "$PKI_DIR/ca.key" ]; then
    "$PYTHON" starter.py pki bootstrap --dir "$PKI_DIR"
else
    echo "$PKI_DIR/ca.crt: keeping the existing CA (--overwrite replaces it)"
fi

# 2. The pairs bootstrap does not make, from the same CA (`starter.py pki issue`); with
#    --renew, every pair again, including bootstrap's own.
issue() {  # NAME CN USAGE DAYS [--dns D | --ip I]...
    local name="$1" cn="$2" usage="$3" days="$4"
    shift 4
    if [ "$MODE" = create ] && [ -e "$PKI_DIR/$name/tls.crt" ]; then
        echo "$PKI_DIR/$name: keeping the existing pair (--renew re-issues it)"
        return
    fi
    "$PYTHON" starter.py pki issue "$name" --dir "$PKI_DIR" --cn "$cn" --usage "$usage" \
        --days "$days" "$@"
}
if [ "$MODE" = renew ]; then
    # The same names bootstrap gives these two.
    issue server localhost server 365 --dns localhost --ip 127.0.0.1
    issue client keyward-worker client 30
fi
# Temporal presents its internode server certificate as its client certificate: both usages.
issue internode temporal-internode both 365 --dns temporal --dns localhost --ip 127.0.0.1
issue ui temporal-ui client 30
issue admin temporal-admin client 30

# 3. A .env with fresh development secrets, unless there is one already.
ENV_FILE="$HERE/.env"
if [ "$PKI_DIR" = "$HERE/pki" ]; then
    if [ ! -e "$ENV_FILE" ]; then
        secret() { "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(24))'; }
        sed -e "s|^VAULT_DEV_ROOT_TOKEN=.*|VAULT_DEV_ROOT_TOKEN=$(secret)|" \
            -e "s|^POSTGRES_PASSWORD=.*|POSTGRES_PASSWORD=$(secret)|" \
            -e "s|^PKI_UID=.*|PKI_UID=$(id -u)|" \
            -e "s|^PKI_GID=.*|PKI_GID=$(id -g)|" \
            "$HERE/.env.example" > "$ENV_FILE"
        chmod 600 "$ENV_FILE"
        echo "$ENV_FILE: written with a random Vault root token and PostgreSQL password"
    elif ! grep -q "^PKI_UID=$(id -u)\$" "$ENV_FILE"; then
        echo "warning: $ENV_FILE does not say PKI_UID=$(id -u); the containers that read" \
             "private keys run as PKI_UID:PKI_GID and the keys are mode 0600" >&2
    fi
fi
echo "certificates are in $PKI_DIR"
