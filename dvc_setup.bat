@echo off
REM Seed compatibility: set up DVC with the local remote .\dvc_storage (idempotent).
where churnops >nul 2>nul
if errorlevel 1 (
    echo error: churnops is not on PATH: run `.venv\Scripts\activate` in the churnops folder, or `pip install -e .` 1>&2
    exit /b 2
)
churnops dvc-setup %*
exit /b %ERRORLEVEL%
