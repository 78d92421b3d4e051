# shellcheck shell=bash
# Installs the Debian 12 packages that Songda's build, tests and browser
# checks need, and only those that are missing. Source it, then:
#
#   songda_install_deps build services browser   # any of the groups
#
# Groups:
#   build     compiler, CMake/Ninja and the C++ libraries the project links
#   services  the real services the tests start (tests/services/): Redis,
#             kcat, aiosmtpd, Maven + Java 17 (for the Kafka broker)
#   browser   headless Chromium and a CJK font (so screenshots show the Chinese
#             UI), plus Node.js/npm when `node` is missing
#   bench     what bench/run adds to "services": wrk (the simulator's
#             capacity), linux-perf (--profile), curl
#
# Each package is checked with dpkg-query; when something is missing it runs
# `apt-get update` once and installs the missing ones without recommends.
# Prints nothing when all is there. Needs root to install (fails with a
# clear message otherwise). Java and Maven may come from outside Debian: a
# `java` of version >= 17 on PATH stands for openjdk-17-jre-headless, an
# `mvn` on PATH for maven; likewise an existing `node` skips nodejs/npm.
# Safe under `set -euo pipefail`; defines functions only.

_songda_deps_build=(
  g++ cmake ninja-build pkg-config
  librdkafka-dev libhiredis-dev libcpp-httplib-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev nlohmann-json3-dev libvalijson-dev
  libssl-dev libcurl4-openssl-dev prometheus-cpp-dev libspdlog-dev
  libpugixml-dev libjemalloc-dev clang-format clang-tidy
)
_songda_deps_services=(
  redis-server redis-tools kcat python3-aiosmtpd
  maven openjdk-17-jre-headless ca-certificates openssl
)
_songda_deps_browser=(chromium fonts-wqy-zenhei nodejs npm)
_songda_deps_bench=(wrk linux-perf curl)

# _songda_pkg_installed PKG: true when dpkg has PKG fully installed.
_songda_pkg_installed() {
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

# _songda_java_major: prints the major version of the `java` on PATH, or
# nothing. Handles both "17.0.15" and the old "1.8.0_392" forms.
_songda_java_major() {
  local line ver
  command -v java >/dev/null 2>&1 || return 0
  line=$(java -version 2>&1 | grep -m1 -E 'version "[^"]+"') || return 0
  ver=${line#*version \"}
  ver=${ver%%\"*}
  if [[ $ver == 1.* ]]; then
    ver=${ver#1.}
  fi
  ver=${ver%%[.+_-]*}
  [[ $ver =~ ^[0-9]+$ ]] && printf '%s\n' "$ver"
  return 0
}

# _songda_pkg_satisfied PKG: true when PKG is installed, or when a command
# from outside Debian stands in for it.
_songda_pkg_satisfied() {
  local major
  _songda_pkg_installed "$1" && return 0
  case $1 in
    openjdk-17-jre-headless)
      major=$(_songda_java_major)
      [[ -n $major ]] && ((major >= 17))
      ;;
    maven) command -v mvn >/dev/null 2>&1 ;;
    nodejs | npm) command -v node >/dev/null 2>&1 ;;
    *) return 1 ;;
  esac
}

# songda_install_deps GROUP...: installs what the groups need and is missing.
songda_install_deps() {
  local group pkg
  local -a wanted=() missing=()
  if (($# == 0)); then
    echo "songda_install_deps: name one or more groups: build services browser bench" >&2
    return 2
  fi
  for group in "$@"; do
    case $group in
      build) wanted+=("${_songda_deps_build[@]}") ;;
      services) wanted+=("${_songda_deps_services[@]}") ;;
      browser) wanted+=("${_songda_deps_browser[@]}") ;;
      bench) wanted+=("${_songda_deps_bench[@]}") ;;
      *)
        echo "songda_install_deps: unknown group '$group' (known: build services browser bench)" >&2
        return 2
        ;;
    esac
  done
  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "songda_install_deps: dpkg-query not found; this expects Debian 12" >&2
    return 1
  fi
  for pkg in "${wanted[@]}"; do
    _songda_pkg_satisfied "$pkg" || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0

  # Drop duplicates (a package named by two groups), keeping the order.
  local -A seen=()
  local -a todo=()
  for pkg in "${missing[@]}"; do
    [[ -n ${seen[$pkg]:-} ]] && continue
    seen[$pkg]=1
    todo+=("$pkg")
  done

  if ((EUID != 0)); then
    echo "songda_install_deps: missing Debian packages: ${todo[*]}" >&2
    echo "songda_install_deps: not root; run as root, or: sudo apt-get install ${todo[*]}" >&2
    return 1
  fi
  echo "songda_install_deps: installing: ${todo[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || {
    echo "songda_install_deps: apt-get update failed" >&2
    return 1
  }
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${todo[@]}" >&2 || {
    echo "songda_install_deps: apt-get install failed for: ${todo[*]}" >&2
    return 1
  }
}
