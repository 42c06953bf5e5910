#!/usr/bin/env bash
# Makes this checkout ready for the npm scripts: system packages, the wasm32 target, the
# project-local tools in .tools/bin, and node_modules. Every npm script runs it first.
#
# Idempotent: each step checks first and prints one line only when it installs something;
# when everything is present the whole run prints one line and takes a fraction of a second.
# Cargo-installed tools are also kept in a machine-level cache
# (${XDG_CACHE_HOME:-~/.cache}/fs-sync/tools/<crate>-<version>/) so a fresh clone on the same
# machine (CI clones anew every run) copies them instead of compiling them again.
# It exports nothing: other scripts take tools from .tools/bin by path.
set -euo pipefail
FS_SYNC_SCRIPT=bootstrap
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"

tools=$root/.tools
# One bootstrap at a time per checkout (npm scripts started side by side would otherwise race).
mkdir -p "$tools"
exec 9>"$tools/.lock"
flock -n 9 || { say "waiting for another bootstrap of this checkout to finish"; flock 9; }

logs=$tools/logs
cache=${XDG_CACHE_HOME:-$HOME/.cache}/fs-sync/tools
pg_bin=/usr/lib/postgresql/15/bin
pgtap_control=/usr/share/postgresql/15/extension/pgtap.control
installed=0      # set to 1 by every step that installs something
summary=()       # what is present, for the one-line "all present" message

# --- system packages (Debian) -----------------------------------------------------------------
apt_pkgs=()
apt_why=()
pg_server_ok() {
  local b
  for b in initdb pg_ctl postgres; do
    have "$b" || [ -x "$pg_bin/$b" ] || return 1
  done
}
pg_server_ok || { apt_pkgs+=(postgresql-15); apt_why+=("PostgreSQL 15 server for the SQL tests"); }
[ -f "$pgtap_control" ] || { apt_pkgs+=(postgresql-15-pgtap); apt_why+=("pgTAP extension"); }
have pg_prove || { apt_pkgs+=(libtap-parser-sourcehandler-pgtap-perl); apt_why+=("pg_prove, the pgTAP runner"); }
for c in zip unzip; do
  have "$c" || { apt_pkgs+=("$c"); apt_why+=("$c CLI, an independent zip tool the snapshot tests use"); }
done
have python3 || { apt_pkgs+=(python3); apt_why+=("python3's zipfile, an independent zip reader/writer for tests"); }
have chromium || { apt_pkgs+=(chromium); apt_why+=("headless Chromium for the browser test of the npm package"); }
have promtool || { apt_pkgs+=(prometheus); apt_why+=("promtool, which checks and unit-tests the alert rules in ops/prometheus"); }

if [ ${#apt_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && have apt-get; then
    say "installing ${apt_pkgs[*]} with apt-get ($(join_by '; ' "${apt_why[@]}"))"
    quietly "$logs/apt-get-update.log" apt-get update
    quietly "$logs/apt-get-install.log" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y --no-install-recommends "${apt_pkgs[@]}"
    installed=1
  else
    die "missing system packages: ${apt_pkgs[*]}. Install them (Debian/Ubuntu: sudo apt-get install -y --no-install-recommends ${apt_pkgs[*]}), or run 'npm run bootstrap' as root on Debian."
  fi
fi
summary+=("PostgreSQL 15 + pgTAP" "zip/unzip/python3" "chromium" "promtool")

# --- toolchains ---------------------------------------------------------------------------------
if ! have cargo || ! have rustup; then
  die "cargo and rustup are required (https://rustup.rs), then run this again"
fi
have node || die "Node.js >= 20 is required"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node.js >= 20 is required (found $(node --version))"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "installing rustup target wasm32-unknown-unknown (fs-sync-core and the npm package build for wasm32)"
  quietly "$logs/rustup.log" rustup target add wasm32-unknown-unknown
  installed=1
fi
summary+=("wasm32 target")

# --- cargo-installed tools in .tools/bin ----------------------------------------------------------
# Each tool's version is recorded in .tools/versions/<crate> when it is installed or restored.

# lock_version PKG: the version of PKG in Cargo.lock ("" when absent).
lock_version() {
  [ -f Cargo.lock ] || return 0
  awk -v pkg="$1" '
    $0 == "name = \"" pkg "\"" { want = 1; next }
    want && /^version = / { gsub(/"/, "", $3); print $3; exit }
    /^\[\[package\]\]/ { want = 0 }' Cargo.lock
}

# restore_cached CRATE DIR WHY: copy a cached build of CRATE from DIR into .tools/bin.
restore_cached() {
  local crate=$1 dir=$2 why=$3 version=${2##*/"$1"-}
  say "copying $crate $version from $cache into .tools ($why)"
  mkdir -p "$tools/bin" "$tools/versions"
  cp -p "$dir"/* "$tools/bin/"
  echo "$version" >"$tools/versions/$crate"
  installed=1
}

# cargo_install CRATE VERSION_REQ LABEL WHY: cargo install into .tools, record the version, cache it.
cargo_install() {
  local crate=$1 req=$2 label=$3 why=$4 version bins_list bins
  say "installing $crate $label into .tools ($why; compiles for a few minutes, once per machine)"
  # --force: binaries restored from the cache are not in .tools/.crates.toml and would block cargo.
  quietly "$logs/cargo-install-$crate.log" \
    cargo install "$crate" --version "$req" --root "$tools" --force
  read -r version bins_list < <(cargo_record "$crate") || true
  if [ -z "${version:-}" ] || [ -z "${bins_list:-}" ]; then
    die "cargo install $crate left no record in .tools/.crates2.json"
  fi
  read -r -a bins <<<"$bins_list"
  mkdir -p "$tools/versions"
  echo "$version" >"$tools/versions/$crate"
  save_cached "$crate" "$version" "${bins[@]}" || say "note: could not cache $crate in $cache (continuing)"
  installed=1
}

# cargo_record CRATE: "<version> <bin>..." from cargo's record of what it installed into .tools.
cargo_record() {
  [ -f "$tools/.crates2.json" ] || return 0
  node -e '
    const [file, crate] = process.argv.slice(1);
    for (const [key, v] of Object.entries(require(file).installs)) {
      const [name, ver] = key.split(" ");
      if (name === crate) console.log(ver, v.bins.join(" "));
    }' "$tools/.crates2.json" "$1"
}

# cache_present CRATE VERSION: a tool that is present but missing from the machine cache (installed
# by an older bootstrap, say) is copied there quietly, so the next fresh clone gets it.
cache_present() {
  local crate=$1 version=$2 rec_version bins_list bins
  [ -n "$(ls -A "$cache/$crate-$version" 2>/dev/null)" ] && return 0
  read -r rec_version bins_list < <(cargo_record "$crate") || return 0
  [ "$rec_version" = "$version" ] || return 0
  read -r -a bins <<<"$bins_list"
  save_cached "$crate" "$version" "${bins[@]}" 2>/dev/null || true
}

# save_cached CRATE VERSION BIN...: copy the binaries to the machine cache. They are copied into a
# temp folder beside the target and renamed into place, so a half-written copy is never used.
save_cached() {
  local crate=$1 version=$2 b tmp dest complete=1
  shift 2
  dest="$cache/$crate-$version"
  for b in "$@"; do [ -x "$dest/$b" ] || complete=0; done
  [ "$complete" = 1 ] && return 0
  tmp="$cache/.tmp-$crate-$version-$$"
  mkdir -p "$tmp" || return 1
  for b in "$@"; do
    cp -p "$tools/bin/$b" "$tmp/" || { rm -rf "$tmp"; return 1; }
  done
  rm -rf "$dest"   # an incomplete copy from an older bootstrap
  mv -T "$tmp" "$dest" 2>/dev/null || rm -rf "$tmp"
}

# wasm-bindgen-cli: exactly the wasm-bindgen version in Cargo.lock.
wb_why="runs fs-sync-core's tests on wasm32; builds the npm package"
wb_version=$(lock_version wasm-bindgen)
if [ -z "$wb_version" ]; then
  say "Cargo.lock has no wasm-bindgen package; skipping wasm-bindgen-cli"
elif [ "$("$tools/bin/wasm-bindgen" --version 2>/dev/null || true)" = "wasm-bindgen $wb_version" ] \
    && [ -x "$tools/bin/wasm-bindgen-test-runner" ]; then
  summary+=("wasm-bindgen-cli $wb_version")
  cache_present wasm-bindgen-cli "$wb_version"
elif [ -x "$cache/wasm-bindgen-cli-$wb_version/wasm-bindgen" ]; then
  restore_cached wasm-bindgen-cli "$cache/wasm-bindgen-cli-$wb_version" "$wb_why"
else
  cargo_install wasm-bindgen-cli "$wb_version" "$wb_version" "$wb_why"
fi

# worker-build 0.8.x (its version is read from the record, not by running it: running it builds).
wk_why="builds the Cloudflare Worker in edge/"
wk_have=$(cat "$tools/versions/worker-build" 2>/dev/null || true)
if [ -x "$tools/bin/worker-build" ] && [[ $wk_have == 0.8.* ]]; then
  summary+=("worker-build $wk_have")
  cache_present worker-build "$wk_have"
else
  wk_cached=$(find "$cache" -maxdepth 1 -name 'worker-build-0.8.*' 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$wk_cached" ] && [ -x "$wk_cached/worker-build" ]; then
    restore_cached worker-build "$wk_cached" "$wk_why"
  else
    cargo_install worker-build '^0.8' 0.8.x "$wk_why"
  fi
fi

# --- npm dependencies from the committed package-lock.json -----------------------------------------
stamp=node_modules/.fs-sync-lock-stamp
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -d node_modules ] || [ "$(cat "$stamp" 2>/dev/null || true)" != "$lock_sum" ]; then
  reason="package-lock.json changed since the last install"
  [ -d node_modules ] || reason="no node_modules yet"
  say "installing npm dependencies with npm ci ($reason; node tests, the wasm package build (binaryen) and benches use them, the React Native ones Metro and Hermes too)"
  quietly "$logs/npm-ci.log" npm ci --no-audit --no-fund
  echo "$lock_sum" >"$stamp"
  installed=1
fi
summary+=("node_modules")

if [ "$installed" = 0 ]; then
  say "all present ($(join_by ', ' "${summary[@]}"))"
fi
