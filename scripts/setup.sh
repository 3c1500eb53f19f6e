#!/usr/bin/env bash
# Installs (as root) or names (as a normal user) what `make run` / `make test`
# need beyond the Rust toolchain:
#   run:  PostgreSQL server binaries (initdb, pg_ctl) — Debian package `postgresql`
#   test: also Node.js/npm (for buf, installed under .tools/) and docker-compose
#         (to validate deploy/docker-compose.yml without a Docker engine).
set -euo pipefail

mode="${1:-run}"
cd "$(dirname "$0")/.."

is_root() { [ "$(id -u)" -eq 0 ]; }
missing_pkgs=()

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is not installed. Install Rust first: https://rustup.rs (then open a new shell)." >&2
  exit 1
fi

have_pg() {
  [ -n "${CRM_PG_BIN:-}" ] && [ -x "${CRM_PG_BIN}/initdb" ] && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && return 0
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1
}
have_pg || missing_pkgs+=(postgresql)
if is_root && ! id -u postgres >/dev/null 2>&1; then
  # As root the cluster runs as `postgres`; Debian's package creates that user.
  missing_pkgs+=(postgresql)
fi

if [ "$mode" = test ]; then
  command -v npm >/dev/null 2>&1 || missing_pkgs+=(nodejs npm)
  command -v docker-compose >/dev/null 2>&1 || missing_pkgs+=(docker-compose)
fi

if [ "${#missing_pkgs[@]}" -gt 0 ]; then
  # shellcheck disable=SC2207
  pkgs=($(printf '%s\n' "${missing_pkgs[@]}" | sort -u))
  if is_root && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${pkgs[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  else
    echo "setup: missing ${pkgs[*]}. Install them, then run make again:" >&2
    echo "    sudo apt-get install -y ${pkgs[*]}" >&2
    exit 1
  fi
fi

if [ "$mode" = test ] && [ ! -x .tools/node_modules/.bin/buf ]; then
  echo "setup: installing buf (npm @bufbuild/buf) into .tools/"
  mkdir -p .tools
  npm install --silent --no-audit --no-fund --prefix .tools @bufbuild/buf@1.75.0 >/dev/null
fi
