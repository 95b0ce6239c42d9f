#!/usr/bin/env bash
# Builds the Debian package of whatsapp-sidecar with cargo-deb ([package.metadata.deb] in
# Cargo.toml) and checks it: the files it installs, the conffile, a stripped binary that runs,
# maintainer scripts that neither enable nor start the service, and (when nginx is installed)
# `nginx -t` on deploy/nginx-whatsapp-sidecar.conf. Needs no root.
#
# Usage: deploy/build-deb.sh [cargo deb options]   e.g. --no-build to repackage target/release
# Exits non-zero when a check fails, after listing what failed.
set -euo pipefail

cd "$(dirname "$0")/.."

failures=()
fail() {
    echo "FAIL: $*" >&2
    failures+=("$*")
}
ok() {
    echo "ok: $*"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- cargo-deb --------------------------------------------------------------------------------
if ! cargo deb --version >/dev/null 2>&1; then
    echo "cargo-deb not found: installing it (cargo install cargo-deb --locked)"
    cargo install cargo-deb --locked
fi
echo "using $(cargo deb --version)"

# --- build ------------------------------------------------------------------------------------
# --strip: [profile.release] has debug = "line-tables-only", with which cargo-deb would otherwise
# ship the binary with its debug sections. cargo deb prints the package's path last on stdout.
deb=$(cargo deb --strip "$@" | tail -n 1)
if [[ ! -f "$deb" ]]; then
    echo "FAIL: cargo deb did not report a package file (got: '$deb')" >&2
    exit 1
fi
echo "package: $deb"

# --- file list --------------------------------------------------------------------------------
dpkg-deb -c "$deb" >"$tmp/contents"
# path -> expected permissions
declare -A expected=(
    [./usr/bin/whatsapp-sidecar]=-rwxr-xr-x
    [./usr/lib/systemd/system/whatsapp-sidecar.service]=-rw-r--r--
    [./usr/lib/systemd/system/whatsapp-sidecar@.service]=-rw-r--r--
    [./etc/whatsapp-sidecar/whatsapp-sidecar.toml]=-rw-r--r--
    [./usr/share/doc/whatsapp-sidecar/README.md]=-rw-r--r--
    [./usr/share/doc/whatsapp-sidecar/grafana-dashboard.json]=-rw-r--r--
    [./usr/share/doc/whatsapp-sidecar/nginx-whatsapp-sidecar.conf]=-rw-r--r--
    [./usr/share/doc/whatsapp-sidecar/copyright]=-rw-r--r--
)
for path in "${!expected[@]}"; do
    mode=$(awk -v p="$path" '$6 == p { print $1 }' "$tmp/contents")
    if [[ -z "$mode" ]]; then
        fail "not in the package: $path"
    elif [[ "$mode" != "${expected[$path]}" ]]; then
        fail "$path has mode $mode, expected ${expected[$path]}"
    else
        ok "$path ($mode)"
    fi
done

# --- control archive: conffile and maintainer scripts -----------------------------------------
conffile=/etc/whatsapp-sidecar/whatsapp-sidecar.toml
if dpkg-deb -I "$deb" conffiles 2>/dev/null | grep -qxF "$conffile"; then
    ok "conffiles lists $conffile"
else
    fail "conffiles does not list $conffile"
fi
# The admin writes the credentials before the service can run: the package must not enable or
# start it. cargo-deb's systemd integration then writes dh_installsystemd's "don't enable"
# snippet (deb-systemd-helper debian-installed ... update-state) and no start.
postinst=$(dpkg-deb -I "$deb" postinst 2>/dev/null || true)
if [[ -z "$postinst" ]]; then
    fail "no postinst (expected the systemd snippets: daemon-reload and state update)"
elif grep -q 'deb-systemd-invoke start' <<<"$postinst"; then
    fail "postinst starts a service on install"
elif ! grep -q 'deb-systemd-helper debian-installed' <<<"$postinst"; then
    fail "postinst enables a service on install (no 'debian-installed' guard)"
else
    ok "postinst neither enables nor starts the service"
fi

# --- the binary: stripped, and it runs --------------------------------------------------------
bin="$tmp/whatsapp-sidecar"
dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./usr/bin/whatsapp-sidecar >"$bin"
chmod +x "$bin"
if command -v file >/dev/null; then
    description=$(file -b "$bin")
    if [[ "$description" == *"not stripped"* || "$description" != *stripped* ]]; then
        fail "binary not stripped: $description"
    else
        ok "binary stripped: $description"
    fi
elif command -v readelf >/dev/null; then
    if readelf -S "$bin" | grep -q '\.debug_'; then
        fail "binary has debug sections: $(readelf -S "$bin" | grep -o '\.debug_[a-z_]*' | tr '\n' ' ')"
    else
        ok "binary has no .debug_* section (readelf)"
    fi
else
    fail "neither file nor readelf is installed: cannot check that the binary is stripped"
fi
if version=$("$bin" --version 2>&1); then
    ok "binary runs: $version"
else
    fail "the packaged binary does not run: $version"
fi

# --- nginx -t on the example ------------------------------------------------------------------
if command -v nginx >/dev/null; then
    # The example points at Let's Encrypt files that do not exist here: test a copy using a
    # throwaway self-signed certificate, under a temporary prefix with its own pid and logs.
    ngx="$tmp/nginx"
    mkdir -p "$ngx/logs"
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=wa.example.com \
        -keyout "$ngx/privkey.pem" -out "$ngx/fullchain.pem" 2>/dev/null
    ports=()
    if ((EUID != 0)); then
        # nginx -t binds the listening ports: without root, 80 and 443 become 18080 and 18443.
        ports=(-E -e 's/^([[:space:]]*listen[[:space:]]+(\[::\]:)?)80([[:space:];])/\118080\3/'
            -e 's/^([[:space:]]*listen[[:space:]]+(\[::\]:)?)443([[:space:];])/\118443\3/')
    fi
    sed "${ports[@]}" -e "s#/etc/letsencrypt/live/[^;]*/fullchain\.pem#$ngx/fullchain.pem#" \
        -e "s#/etc/letsencrypt/live/[^;]*/privkey\.pem#$ngx/privkey.pem#" \
        deploy/nginx-whatsapp-sidecar.conf >"$ngx/site.conf"
    cat >"$ngx/nginx.conf" <<EOF
pid $ngx/nginx.pid;
error_log $ngx/logs/error.log;
events {}
http {
    access_log $ngx/logs/access.log;
    client_body_temp_path $ngx/body;
    proxy_temp_path $ngx/proxy;
    include $ngx/site.conf;
}
EOF
    # -e (nginx >= 1.19.5): the startup error log too, instead of the default /var/log/nginx/.
    errlog=()
    if nginx -h 2>&1 | grep -q -- '-e filename'; then
        errlog=(-e "$ngx/logs/error.log")
    fi
    if nginx_out=$(nginx -t -p "$ngx/" "${errlog[@]}" -c "$ngx/nginx.conf" 2>&1); then
        ok "nginx -t on deploy/nginx-whatsapp-sidecar.conf:"
        sed 's/^/    /' <<<"$nginx_out"
    else
        fail "nginx -t on deploy/nginx-whatsapp-sidecar.conf:"$'\n'"$nginx_out"
    fi
else
    echo "skip: nginx is not installed, deploy/nginx-whatsapp-sidecar.conf not tested (nginx -t)"
fi

# --- result -----------------------------------------------------------------------------------
if ((${#failures[@]})); then
    echo >&2
    echo "${#failures[@]} check(s) failed:" >&2
    printf '  - %s\n' "${failures[@]}" >&2
    exit 1
fi
size=$(stat -c %s "$deb")
echo
echo "all checks passed"
echo "package: $(realpath "$deb")"
echo "size: $size bytes ($(numfmt --to=iec-i --suffix=B "$size"))"
