#!/usr/bin/env bash
# Install the Debian packages fleetops needs on a fresh Debian 12 machine (CI).
#
# The Laravel test harness (tests/laravel_app) runs on Debian's packaged Laravel 8.83
# because Packagist/composer is not reachable: php-laravel-framework pulls in Symfony,
# Monolog, Carbon, ... as php-* packages. The php-* extension packages give the three
# SQL drivers, phpredis, mbstring and xml.
# chromium is the headless browser the UI test (tests/e2e/test_ui_browser.py) drives through
# Playwright's Python package with executable_path=/usr/bin/chromium: Debian's build, not a
# browser downloaded by `playwright install`.
#
# libmariadb-dev and pkg-config let pip build mysqlclient, the C driver fleetops talks to
# MariaDB/MySQL with (it ships no Linux wheel): `make setup` installs just those
# (`install-system-deps.sh build`) before pip, `make test` and CI install everything.
#
# Idempotent: when every package is already installed it exits without touching apt.
set -euo pipefail

BUILD_PACKAGES=(
    libmariadb-dev
    pkg-config
)

PACKAGES=(
    "${BUILD_PACKAGES[@]}"
    php-cli
    php-laravel-framework
    php-sqlite3
    php-pgsql
    php-mysql
    php-redis
    php-mbstring
    php-xml
    time
    chromium
)

is_installed() {
    # Read the whole output first: `dpkg -s | grep -q` under pipefail fails at random
    # when grep exits early and dpkg dies of SIGPIPE.
    local status
    status="$(dpkg -s "$1" 2>/dev/null || true)"
    grep -qx 'Status: install ok installed' <<<"$status"
}

if [ "${1:-all}" = build ]; then
    PACKAGES=("${BUILD_PACKAGES[@]}")
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-system-deps: all ${#PACKAGES[@]} packages already installed"
    exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    SUDO=(sudo)
fi

echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" apt-get install -y "${PACKAGES[@]}"

if [ "${1:-all}" = build ]; then
    exit 0
fi
php --version
chromium --version
php -r 'require "/usr/share/php/Illuminate/autoload.php"; echo "Laravel ", Illuminate\Foundation\Application::VERSION, PHP_EOL;'
