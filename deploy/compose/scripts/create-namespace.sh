#!/bin/sh
# Runs in the temporalio/admin-tools image (service temporal-create-namespace)
# once the frontend accepts connections: creates the namespace keyward uses,
# if it does not exist yet. The `temporal` CLI connects with mTLS from the
# TEMPORAL_ADDRESS / TEMPORAL_TLS_* variables set in compose.yaml.
set -eu

NAMESPACE="${NAMESPACE:-default}"
RETENTION="${NAMESPACE_RETENTION:-72h}"

echo "waiting for the Temporal frontend at ${TEMPORAL_ADDRESS:?} (mTLS)"
attempts=0
until temporal operator cluster health >/dev/null 2>&1; do
    attempts=$((attempts + 1))
    if [ "$attempts" -ge 60 ]; then
        # Show the real error (certificate, server name, ...) before giving up.
        temporal operator cluster health
        exit 1
    fi
    sleep 2
done

if temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
    echo "namespace ${NAMESPACE} already exists"
else
    temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION"
    echo "namespace ${NAMESPACE} created (retention ${RETENTION})"
fi
