#!/usr/bin/env bash
# One-command set-up for a fresh Debian machine (root or sudo): system packages, then a build.
#   cmake               builds CharLS (JPEG-LS decoding) for dicom-pixeldata
#   mesa-vulkan-drivers Mesa's lavapipe: a software Vulkan adapter so GPU tests run without a GPU
#   chromium            headless browser used by the report tests
#   python3-venv        the venvs: .venv (workflow/requirements.txt: Snakemake, for
#                       workflow/Snakefile and its test) and .venv-tools
#                       (scripts/test-tools-requirements.txt: SimpleITK, pynrrd, highdicom —
#                       NRRD and DICOM SEG written and read by software outside ildtrack)
#   dicom3tools         dciodvfy, the DICOM conformance check of the DICOM SEG tests
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(cmake mesa-vulkan-drivers libvulkan1 chromium fonts-dejavu-core python3-pip python3-venv dicom3tools)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Snakemake (workflow/Snakefile and the suite's workflow test) in a venv of this checkout,
# pinned by workflow/requirements.txt; made again when that file changes.
if ! cmp -s workflow/requirements.txt .venv/requirements.installed 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r workflow/requirements.txt
  cp workflow/requirements.txt .venv/requirements.installed
fi
# The test venv: made once, remade when the requirements change (tests fail under CI=true
# without it; elsewhere they skip with a message).
req=scripts/test-tools-requirements.txt
venv=.venv-tools
if ! cmp -s "$req" "$venv/requirements.txt" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  cp "$req" "$venv/requirements.txt"
fi
if [ "${1:-}" != "--no-build" ]; then
  # Exactly what the README's main-job command runs: features unify differently for `-p` than
  # for `--workspace`, and a workspace build left `cargo run -p ildtrack-cli` compiling again.
  cargo build --release --locked -p ildtrack-cli
fi
