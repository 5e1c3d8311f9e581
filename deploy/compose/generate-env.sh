#!/bin/sh
# Writes a .env for docker-compose.yml: every variable of env.example, with fresh random
# secrets filled in. Needs only OpenSSL 1.1.1 or newer (for Ed25519). Refuses to overwrite:
# the secrets of a running deployment (MongoDB passwords, encryption keys) cannot simply be replaced.
#
#   deploy/compose/generate-env.sh [path]      # default: .env at the repository root
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out="${1:-$here/../../.env}"
if [ -e "$out" ]; then
    echo "$out already exists; not overwriting it" >&2
    exit 1
fi

secret() { openssl rand -hex 32; }
# The PEM on one line: \n escapes inside double quotes are line breaks to compose.
signing_key=$(openssl genpkey -algorithm ed25519 | awk '{ printf "%s\\n", $0 }')
key_id="key-$(date -u +%Y%m%d)"

# How each secret is made: deploy/secrets.spec, the list the local stack reads too.
kind_of() { awk -v name="$1" '$1 == name { print $2 }' "$here/../secrets.spec"; }

umask 077
while IFS= read -r line; do
    name=${line%%=*}
    case "$line" in
        \#* | "") printf '%s\n' "$line"; continue ;;
    esac
    case "$(kind_of "$name")" in
        random) printf '%s=%s\n' "$name" "$(secret)" ;;
        ed25519-pem) printf '%s="%s"\n' "$name" "$signing_key" ;;
        aes-keys) printf '%s=%s:%s\n' "$name" "$key_id" "$(openssl rand -base64 32)" ;;
        key-id) printf '%s=%s\n' "$name" "$key_id" ;;
        *) printf '%s\n' "$line" ;;
    esac
done <"$here/env.example" >"$out"
echo "wrote $out (the administrator's credential is REGISTRATION_BOOTSTRAP_ADMIN_CLIENT_ID/_SECRET)"
