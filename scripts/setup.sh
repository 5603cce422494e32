#!/usr/bin/env bash
# One-command environment setup for gsseg, used by `make demo` and `make test`.
#
#   - creates the virtualenv .venv (override with GSSEG_VENV) if it is missing;
#   - installs torch when none is importable: TORCH_SPEC (default torch==2.13.0, the CPU
#     build); GPU users set e.g. TORCH_SPEC="torch==2.5.1 --index-url <their CUDA index>";
#   - installs the Debian libraries open3d needs when run as root, otherwise stops and prints
#     the exact command to run;
#   - installs Chromium (used headless by the viewer's browser test) when run as root,
#     otherwise prints the command and goes on (that test is skipped without it);
#   - installs gsseg itself (editable) with its test extras;
#   - installs PlayCanvas splat-transform (npm) for the export-format tests: required under CI
#     (CI=true), otherwise skipped with a note when npm is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${GSSEG_VENV:-.venv}"
PY_BOOT="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
DEB_PACKAGES=(libusb-1.0-0 libgomp1)
OPTIONAL_DEB_PACKAGES=(chromium)   # headless browser for tests/viewer/test_viewer_browser.py

deb_missing() {
    ! dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}
missing_debs=()
for pkg in "${DEB_PACKAGES[@]}"; do
    if deb_missing "$pkg"; then
        missing_debs+=("$pkg")
    fi
done
missing_optional=()
for pkg in "${OPTIONAL_DEB_PACKAGES[@]}"; do
    if deb_missing "$pkg"; then
        missing_optional+=("$pkg")
    fi
done
if [ "${#missing_optional[@]}" -gt 0 ] && command -v dpkg-query >/dev/null 2>&1 && [ "$(id -u)" != "0" ]; then
    echo "[gsseg setup] optional: the browser test of the viewer needs ${missing_optional[*]} (it is skipped without it):" >&2
    echo "    sudo apt-get update && sudo apt-get install -y ${missing_optional[*]}" >&2
fi
if [ "$(id -u)" = "0" ]; then
    missing_debs+=("${missing_optional[@]}")
fi
if [ "${#missing_debs[@]}" -gt 0 ] && command -v dpkg-query >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ]; then
        echo "[gsseg setup] installing Debian packages: ${missing_debs[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_debs[@]}"
    else
        echo "[gsseg setup] open3d needs Debian packages that are not installed. Run:" >&2
        echo "    sudo apt-get update && sudo apt-get install -y ${missing_debs[*]}" >&2
        echo "then run this command again." >&2
        exit 1
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "[gsseg setup] creating virtualenv $VENV"
    "$PY_BOOT" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install -q --upgrade pip >/dev/null 2>&1 || true

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    echo "[gsseg setup] installing $TORCH_SPEC"
    # shellcheck disable=SC2086
    "$PY" -m pip install -q $TORCH_SPEC
fi

echo "[gsseg setup] installing gsseg and its dependencies"
"$PY" -m pip install -q -e ".[test]"
"$PY" -c "import torch, gsseg; print(f'[gsseg setup] ready: gsseg {gsseg.__version__}, torch {torch.__version__}')"

if command -v npm >/dev/null 2>&1; then
    bash scripts/install_splat_transform.sh >/dev/null || { [ -n "${CI:-}" ] && exit 1; echo "[gsseg setup] note: splat-transform not installed; its tests are skipped" >&2; }
elif [ -n "${CI:-}" ]; then
    echo "[gsseg setup] CI needs npm (Node.js) for the splat-transform export tests: sudo apt-get install -y nodejs npm" >&2
    exit 1
else
    echo "[gsseg setup] note: no npm (Node.js); the splat-transform export tests are skipped" >&2
fi
