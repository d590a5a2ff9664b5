#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Installs what the lab host needs on Amazon Linux 2023 (run as root, e.g. from user data):
# a MySQL-compatible client (mariadb105), Node.js (for the audit-log analyser), jq, and sysbench 1.0.20
# built from the release source with the MySQL driver (AL2023 has no sysbench package).
# Idempotent: packages dnf already has are skipped and sysbench is not rebuilt when 1.0.20 is present.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "$SCRIPT_DIR/lib/common.sh"

SYSBENCH_VERSION=1.0.20
SYSBENCH_URL=${LAB_SYSBENCH_URL:-https://github.com/akopytov/sysbench/archive/refs/tags/${SYSBENCH_VERSION}.tar.gz}
# SHA-256 of the GitHub release archive above (the same digest Homebrew pins for 1.0.20).
SYSBENCH_SHA256=${LAB_SYSBENCH_SHA256:-e8ee79b1f399b2d167e6a90de52ccc90e52408f7ade1b9b7135727efe181347f}
# AL2023 ships Node.js as namespaced packages (nodejs20, nodejs22, ...); the bundled analyser needs >= 20.
NODEJS_PACKAGE=${LAB_NODEJS_PACKAGE:-nodejs22}
MIN_NODE_MAJOR=20
BUILD_ROOT=${LAB_BUILD_ROOT:-/usr/local/src}

usage() {
  cat <<EOF
Usage: $(basename "$0") [-h|--help]

Run as root on Amazon Linux 2023. Installs mariadb105 (client), $NODEJS_PACKAGE, jq and the build
tools, then builds and installs sysbench $SYSBENCH_VERSION with MySQL support into /usr/local.
Environment: LAB_NODEJS_PACKAGE (default nodejs22), LAB_SYSBENCH_URL, LAB_SYSBENCH_SHA256,
LAB_BUILD_ROOT (default /usr/local/src).
EOF
}

check_platform() {
  ((EUID == 0)) || lab_die "run as root (sudo $0)"
  command -v dnf >/dev/null 2>&1 || lab_die "dnf not found: this script targets Amazon Linux 2023"
  if [[ -r /etc/os-release ]]; then
    local id version
    id=$(. /etc/os-release && printf '%s' "${ID:-}")
    version=$(. /etc/os-release && printf '%s' "${VERSION_ID:-}")
    if [[ "$id" != amzn || "$version" != 2023* ]]; then
      lab_log "warning: expected Amazon Linux 2023, found ${id:-unknown} ${version:-}; continuing"
    fi
  fi
}

install_packages() {
  # curl is not listed: AL2023 ships curl-minimal, and naming either flavour can conflict with the other.
  local packages=(
    mariadb105 jq tar gzip "$NODEJS_PACKAGE"
    gcc make automake autoconf libtool pkgconfig libaio-devel openssl-devel
  )
  lab_log "installing packages: ${packages[*]}"
  dnf install -y --setopt=install_weak_deps=False "${packages[@]}" ||
    lab_die "dnf could not install: ${packages[*]}"

  # MySQL client headers for sysbench's MySQL driver: mariadb105-devel, or Connector/C on images without it.
  if ! dnf install -y mariadb105-devel; then
    lab_log "mariadb105-devel unavailable; trying mariadb-connector-c-devel"
    dnf install -y mariadb-connector-c-devel || lab_die "no MySQL/MariaDB client development package could be installed"
  fi
}

node_major() {
  local version
  version=$(node --version 2>/dev/null) || return 1
  version=${version#v}
  printf '%s\n' "${version%%.*}"
}

ensure_node() {
  local major=${NODEJS_PACKAGE#nodejs} current=0
  if command -v node >/dev/null 2>&1; then
    current=$(node_major) || current=0
  fi
  if ((current < MIN_NODE_MAJOR)) && [[ -x "/usr/bin/node-$major" ]]; then
    # The unversioned `node` is an alternatives link (absent, or an older runtime such as the
    # un-namespaced Node 18 package): point it at the runtime installed here.
    alternatives --set node "/usr/bin/node-$major" || lab_die "could not make /usr/bin/node-$major the default node"
    hash -r
  fi
  command -v node >/dev/null 2>&1 || lab_die "node is not on PATH after installing $NODEJS_PACKAGE"
  current=$(node_major) || lab_die "node --version failed"
  ((current >= MIN_NODE_MAJOR)) ||
    lab_die "node $(node --version) is too old for the audit-log analyser (AWS SDK v3 needs >= $MIN_NODE_MAJOR); set LAB_NODEJS_PACKAGE"
  lab_log "node $(node --version)"
}

sysbench_is_current() {
  command -v sysbench >/dev/null 2>&1 && [[ "$(sysbench --version 2>/dev/null)" == "sysbench $SYSBENCH_VERSION"* ]]
}

# configure finds the client library through mysql_config; Connector/C only ships mariadb_config.
mysql_configure_args() {
  if command -v mysql_config >/dev/null 2>&1; then
    printf '%s\n' --with-mysql
  elif command -v mariadb_config >/dev/null 2>&1; then
    printf '%s\n' --with-mysql \
      "--with-mysql-includes=$(mariadb_config --variable=pkgincludedir)" \
      "--with-mysql-libs=$(mariadb_config --variable=pkglibdir)"
  else
    lab_die "neither mysql_config nor mariadb_config found after installing the development package"
  fi
}

build_sysbench() {
  if sysbench_is_current; then
    lab_log "$(sysbench --version) already installed; skipping the build"
    return 0
  fi
  local work="$BUILD_ROOT/sysbench-$SYSBENCH_VERSION"
  local archive="$BUILD_ROOT/sysbench-$SYSBENCH_VERSION.tar.gz"
  lab_require_commands curl sha256sum tar
  mkdir -p "$BUILD_ROOT"
  if [[ ! -f "$archive" ]] || ! sha256sum --check --status <<<"$SYSBENCH_SHA256  $archive"; then
    lab_log "downloading $SYSBENCH_URL"
    curl --fail --silent --show-error --location --retry 5 --retry-delay 5 --output "$archive.part" "$SYSBENCH_URL" ||
      lab_die "could not download $SYSBENCH_URL (does the host reach GitHub? public subnet + internet gateway needed)"
    mv "$archive.part" "$archive"
  fi
  sha256sum --check --status <<<"$SYSBENCH_SHA256  $archive" ||
    lab_die "checksum mismatch for $archive (expected $SYSBENCH_SHA256); delete it or set LAB_SYSBENCH_SHA256"

  rm -rf "$work"
  tar -xzf "$archive" -C "$BUILD_ROOT"
  [[ -x "$work/autogen.sh" ]] || lab_die "unexpected archive layout: $work/autogen.sh missing"
  local configure_args=()
  mapfile -t configure_args < <(mysql_configure_args)
  ((${#configure_args[@]} > 0)) || lab_die "could not work out how to configure sysbench with MySQL support"
  lab_log "building sysbench $SYSBENCH_VERSION (configure ${configure_args[*]})"
  (
    cd "$work"
    ./autogen.sh
    ./configure "${configure_args[@]}"
    make -j "$(nproc)"
    make install
  ) || lab_die "sysbench build failed (see the output above)"
  hash -r
  sysbench_is_current || lab_die "sysbench installed but '$(command -v sysbench || echo sysbench) --version' is not $SYSBENCH_VERSION"
  lab_log "$(sysbench --version) installed at $(command -v sysbench)"
}

main() {
  case "${1:-}" in
    -h | --help) usage; return 0 ;;
    '') ;;
    *) usage >&2; lab_die "unknown argument '$1'" ;;
  esac
  lab_init setup_ec2
  check_platform
  install_packages
  ensure_node
  build_sysbench
  lab_require_commands mariadb jq node sysbench
  lab_log "lab host tools ready: $(mariadb --version | head -n 1)"
}

main "$@"
