#!/usr/bin/env bash
# Installs the Debian packages building Tessera needs, when missing: SAML signature verification
# links Debian's libxmlsec1 (and libxml2, OpenSSL), whose bindings are generated with libclang.
# Used by the README's two commands and by .ci/run.
set -euo pipefail
packages=(pkg-config libssl-dev libxml2-dev libxmlsec1-dev libclang-dev)
missing=()
for p in "${packages[@]}" "$@"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}" >&2
  sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
