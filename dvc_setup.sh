#!/usr/bin/env sh
# Seed compatibility: set up DVC with the local remote ./dvc_storage (idempotent).
set -eu
if ! command -v churnops >/dev/null 2>&1; then
    echo 'error: churnops is not on PATH: run `make run` and `. .venv/bin/activate`, or `pip install -e .`' >&2
    exit 2
fi
exec churnops dvc-setup "$@"
