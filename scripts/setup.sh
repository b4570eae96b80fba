#!/usr/bin/env bash
# One-command set-up for a fresh Debian machine (root or sudo): system packages, then a build.
#   cmake               builds CharLS (JPEG-LS decoding) for dicom-pixeldata
#   mesa-vulkan-drivers Mesa's lavapipe: a software Vulkan adapter so GPU tests run without a GPU
#   chromium            headless browser used by the report tests
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(cmake mesa-vulkan-drivers libvulkan1 chromium fonts-dejavu-core python3-pip)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "${1:-}" != "--no-build" ]; then
  # Exactly what the README's main-job command runs: features unify differently for `-p` than
  # for `--workspace`, and a workspace build left `cargo run -p ildtrack-cli` compiling again.
  cargo build --release --locked -p ildtrack-cli
fi
