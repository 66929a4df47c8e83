#!/bin/sh
# Runs in the hashicorp/vault image (service vault-init) against the dev Vault:
# enables the Transit secrets engine and creates the keys keyward encrypts
# with (TRANSIT_KEYS, comma-separated; a namespace without an entry in
# codec.keys uses the key of its own name, so `default` serves the `default`
# namespace). Idempotent. A dev Vault keeps everything in memory: when the
# vault container restarts, the keys are new and older payloads cannot be
# decrypted any more (see README.md).
set -eu

: "${VAULT_ADDR:?}" "${VAULT_TOKEN:?}"
TRANSIT_MOUNT="${TRANSIT_MOUNT:-transit}"

echo "waiting for Vault at ${VAULT_ADDR}"
until vault status >/dev/null 2>&1; do
    sleep 1
done

if vault secrets list | grep -q "^${TRANSIT_MOUNT}/"; then
    echo "secrets engine ${TRANSIT_MOUNT}/ already enabled"
else
    vault secrets enable -path="$TRANSIT_MOUNT" transit
fi

for key in $(echo "${TRANSIT_KEYS:-default}" | tr ',' ' '); do
    if vault read "${TRANSIT_MOUNT}/keys/${key}" >/dev/null 2>&1; then
        echo "transit key ${key} already exists"
    else
        vault write "${TRANSIT_MOUNT}/keys/${key}" type=aes256-gcm96
        echo "transit key ${key} created"
    fi
done
