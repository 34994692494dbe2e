#!/bin/sh
# Install the Debian 12 packages Inferno needs to build, test, lint and fuzz. Idempotent.
set -eu
PKGS="build-essential cmake git pkg-config python3 ca-certificates
      clang libclang-rt-14-dev clang-format clang-tidy cppcheck
      libjansson-dev libsqlite3-dev libssl-dev libpcre2-dev libedit-dev
      libmicrohttpd-dev libwslay-dev libzstd-dev
      libncurses-dev libcurl4-openssl-dev tmux nginx postgresql libpq-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
# shellcheck disable=SC2086
$SUDO apt-get install -y --no-install-recommends $missing
