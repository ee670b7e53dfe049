#!/usr/bin/env bash
# Installs what building tapegrad needs when it is missing: a C compiler,
# meson, ninja, pkg-config and Check (and, for the tests, python3-numpy when
# it can). Debian/Ubuntu (apt-get); elsewhere it only
# reports what is missing. Sourced by run-tests.sh and run-example.sh.
set -euo pipefail

tg_missing_packages() {
    local missing=()
    command -v cc >/dev/null 2>&1 || missing+=(gcc)
    command -v meson >/dev/null 2>&1 || missing+=(meson)
    command -v ninja >/dev/null 2>&1 || missing+=(ninja-build)
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    if [ "${1:-}" = "with-check" ]; then
        pkg-config --exists check 2>/dev/null || missing+=(check)
    fi
    echo "${missing[@]:-}"
}

# Optional for the tests: python3-numpy, which tools/safetensors_interop.py
# needs (its test is skipped without it). Best effort: never fails the caller.
tg_install_optional() {
    command -v /usr/bin/python3 >/dev/null 2>&1 && /usr/bin/python3 -c 'import numpy' \
        >/dev/null 2>&1 && return 0
    command -v apt-get >/dev/null 2>&1 || return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "==> installing (optional): python3-numpy"
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        $sudo apt-get install -y -qq python3-numpy; } >/dev/null 2>&1 ||
        echo "note: python3-numpy could not be installed; the interop test will be skipped"
    return 0
}

tg_install_deps() {
    local missing
    missing=$(tg_missing_packages "${1:-}")
    if [ "${1:-}" = "with-check" ]; then
        tg_install_optional
    fi
    [ -z "${missing// /}" ] && return 0
    echo "==> installing: $missing"
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: please install $missing (no apt-get here)" >&2
        return 1
    fi
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
}

# Best effort, for the fuzzing and ThreadSanitizer steps: clang and its
# sanitizer runtimes (libclang-rt-<major>-dev on Debian 12 and later; older
# releases ship them with clang). Never fails: those steps skip themselves
# when the tools are missing. TG_NO_CLANG_INSTALL=1 turns it off.
tg_install_clang_runtime() {
    [ -n "${TG_NO_CLANG_INSTALL:-}" ] && return 0
    command -v apt-get >/dev/null 2>&1 || return 0
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null || return 0
        sudo="sudo -n"
    fi
    local updated=0
    if ! command -v clang >/dev/null 2>&1; then
        echo "==> installing (optional): clang"
        $sudo apt-get update -qq >/dev/null 2>&1 && updated=1
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clang >/dev/null 2>&1 ||
            return 0
    fi
    local major rt
    major=$(clang --version 2>/dev/null | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)
    rt="libclang-rt-${major}-dev"
    [ -n "$major" ] || return 0
    dpkg -s "$rt" >/dev/null 2>&1 && return 0
    if ! apt-cache show "$rt" >/dev/null 2>&1; then
        [ "$updated" = 1 ] && return 0
        $sudo apt-get update -qq >/dev/null 2>&1 || return 0
        apt-cache show "$rt" >/dev/null 2>&1 || return 0 # older releases: in clang itself
    fi
    echo "==> installing (optional): $rt"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$rt" >/dev/null 2>&1 || true
    return 0
}
