#!/usr/bin/env bash
# Run the web server and a Celery worker (with its beat scheduler) together;
# Ctrl-C stops both. Called by `make run` with the virtualenv first on PATH.
set -euo pipefail

celery -A phm_portal worker --beat --loglevel=INFO --concurrency=2 &
worker=$!
stop() {
  kill -TERM "$worker" 2>/dev/null || true
  wait "$worker" 2>/dev/null || true
}
trap stop EXIT

echo "Portal on http://127.0.0.1:8000 (Ctrl-C stops the server and the worker)"
python manage.py runserver --noreload 127.0.0.1:8000
