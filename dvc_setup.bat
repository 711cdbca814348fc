@echo off
REM Seed compatibility: set up DVC with the local remote .\dvc_storage (idempotent).
churnops dvc-setup %*
