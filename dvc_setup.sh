#!/usr/bin/env sh
# Seed compatibility: set up DVC with the local remote ./dvc_storage (idempotent).
set -eu
exec churnops dvc-setup "$@"
