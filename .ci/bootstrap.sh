#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian 12 machine, idempotently:
#   1. Debian packages from .ci/debian-packages.txt (as root, through sudo, or it stops and
#      names the packages to install);
#   2. a virtual environment in .venv with the pinned packages from requirements.lock and
#      the project itself (editable).
# A second run checks and returns in about a second. Used by `make setup` (and so by
# `make demo`, `make test`, `make bench`).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
log() { printf 'bootstrap: %s\n' "$*" >&2; }

# -- 1. Debian packages -------------------------------------------------------------------
wanted=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' .ci/debian-packages.txt | awk '{print $1}')
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
  wanted="$wanted python3-venv"
fi
# pyscard compiles a C extension: it needs a compiler and Python's headers.
if ! "$PYTHON" -c 'import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' 2>/dev/null; then
  wanted="$wanted python3-dev"
fi
command -v cc >/dev/null || wanted="$wanted gcc libc6-dev"
missing=()
for pkg in $wanted; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    apt=(apt-get)
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    apt=(sudo apt-get)
  else
    log "these Debian packages are missing and I cannot install them (not root, no sudo):"
    log "  sudo apt-get install --no-install-recommends ${missing[*]}"
    exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${apt[@]}" update -qq
  "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# -- 2. Python virtual environment --------------------------------------------------------
version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [[ "$version" != "3.11" ]]; then
  log "need Python 3.11 (Debian 12's python3), found $version at $(command -v "$PYTHON")"
  exit 1
fi
stamp="$VENV/.bootstrap-$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)"
if [[ -f "$stamp" && -x "$VENV/bin/kiosk" ]]; then
  exit 0
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
log "installing pinned Python packages (requirements.lock)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.lock 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
rm -f "$VENV"/.bootstrap-*
touch "$stamp"
log "ready: $VENV"
