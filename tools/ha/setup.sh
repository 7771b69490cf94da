#!/usr/bin/env bash
# `make ha`'s Home Assistant: homeassistant==2024.3.3 in a venv of its own,
# build/ha/venv (never the project's .venv: HA pins hundreds of packages),
# from tools/ha/requirements.txt with tools/ha/constraints.txt. Idempotent:
# a stamp holds the hash of both files, and a venv that matches is left alone.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=build/ha/venv
STAMP=$VENV/.installed
want=$(cat tools/ha/requirements.txt tools/ha/constraints.txt | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    exit 0
fi

# HA 2024.3 runs on Python 3.11 (and 3.12); 2024.3.3 is the newest release that still takes 3.11.
PYTHON=""
for candidate in python3.11 python3.12 /usr/bin/python3.11; do
    if command -v "$candidate" >/dev/null 2>&1; then
        PYTHON=$(command -v "$candidate")
        break
    fi
done
if [ -z "$PYTHON" ]; then
    echo "make ha: needs python3.11 or python3.12 (apt-get install python3.11-venv)" >&2
    exit 1
fi

echo "make ha: installing Home Assistant 2024.3.3 into $VENV with $PYTHON (a few minutes, once)"
rm -rf "$VENV"
mkdir -p build/ha
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet -c tools/ha/constraints.txt -r tools/ha/requirements.txt
echo "$want" > "$STAMP"
echo "make ha: Home Assistant installed: $("$VENV/bin/python" -c 'from homeassistant.const import __version__; print(__version__)')"
