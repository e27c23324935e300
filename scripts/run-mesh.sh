#!/usr/bin/env bash
# The demo with MESH: NHS England's mesh-sandbox on 127.0.0.1:8700 (mailboxes under
# var/mesh-sandbox), a stand-in national service answering each file every 2 s, and the
# portal configured to send its national opt-out checks there and poll every 10 s.
# Called by `make run-mesh` with the virtualenv first on PATH; Ctrl-C stops everything.
set -euo pipefail

export PHM_MESH_SANDBOX_DIR="${PHM_MESH_SANDBOX_DIR:-var/mesh-sandbox}"
export PHM_MESH_SANDBOX_PORT="${PHM_MESH_SANDBOX_PORT:-8700}"
python -m tests.consent.mesh &
sandbox=$!
trap 'kill -TERM "$sandbox" 2>/dev/null || true; wait "$sandbox" 2>/dev/null || true' EXIT

# The sandbox's test mailboxes (tests/consent/mesh.py); never real credentials.
export PHM_MESH_URL="http://127.0.0.1:${PHM_MESH_SANDBOX_PORT}"
export PHM_MESH_MAILBOX=PHMPORTAL01 PHM_NDOP_MAILBOX=NDOPSTANDIN1
export PHM_MESH_PASSWORD=password PHM_MESH_SHARED_KEY=sandbox-shared-key
export PHM_NDOP_WORKFLOW_ID=SPINE_NTT_UPHOLDING PHM_MESH_POLL_SECONDS="${PHM_MESH_POLL_SECONDS:-10}"

bash scripts/run-demo.sh
