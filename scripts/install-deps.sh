#!/usr/bin/env bash
# Installs, from Debian's packages, whatever bnorm's build, tests and examples need and this
# machine lacks. Run as root (or with sudo available).
set -euo pipefail
packages=(cmake g++ make libeigen3-dev doctest-dev libbenchmark-dev libcli11-dev zlib1g-dev
          dataset-fashion-mnist libonnx-dev libprotobuf-dev
          nlohmann-json3-dev "$@")
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  echo "Installing: ${missing[*]}"
  install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}")
  # apt-get update only when the package lists cannot serve the install (none yet, or out of
  # date): on a machine whose lists are current it would only download them again.
  if ! "${sudo_cmd[@]}" "${install[@]}"; then
    echo "Installing failed with the package lists as they are; updating them and retrying"
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" "${install[@]}"
  fi
fi
