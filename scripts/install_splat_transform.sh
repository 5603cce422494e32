#!/usr/bin/env bash
# Install PlayCanvas splat-transform (npm), the reference splat converter behind SuperSplat, into
# a cache folder: ${GSSEG_NPM_CACHE:-~/.cache/gsseg/npm}. The export tests read every exported
# format back with it. SPLAT_TRANSFORM_VERSION pins the version (default below; "latest" works).
# Prints the tool's path; exit 2 when npm is missing or the install fails.
set -euo pipefail
cache="${GSSEG_NPM_CACHE:-$HOME/.cache/gsseg/npm}"
version="${SPLAT_TRANSFORM_VERSION:-2.7.1}"
tool="$cache/node_modules/.bin/splat-transform"
if [ ! -x "$tool" ]; then
    command -v npm >/dev/null || { echo "error: npm (Node.js) is required to install splat-transform" >&2; exit 2; }
    mkdir -p "$cache"
    echo "[gsseg setup] installing @playcanvas/splat-transform@$version into $cache" >&2
    npm install --prefix "$cache" --no-audit --no-fund --loglevel=error "@playcanvas/splat-transform@$version" >&2 \
        || { echo "error: npm install of @playcanvas/splat-transform failed" >&2; exit 2; }
fi
echo "$tool"
