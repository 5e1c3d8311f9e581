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

umask 077
while IFS= read -r line; do
    name=${line%%=*}
    case "$line" in
        \#* | "") printf '%s\n' "$line" ;;
        MONGO_ROOT_PASSWORD=* | *_MONGODB_PASSWORD=* | *_SECRET=* | MATCHING_LINK_SIGNING_KEY=* | NOTIFICATIONS_LINK_SIGNING_KEY=*)
            printf '%s=%s\n' "$name" "$(secret)" ;;
        REGISTRATION_TOKEN_SIGNING_KEY=*) printf '%s="%s"\n' "$name" "$signing_key" ;;
        *_ENCRYPTION_KEYS=*) printf '%s=%s:%s\n' "$name" "$key_id" "$(openssl rand -base64 32)" ;;
        *_ENCRYPTION_KEY_ID=*) printf '%s=%s\n' "$name" "$key_id" ;;
        *) printf '%s\n' "$line" ;;
    esac
done <"$here/env.example" >"$out"
echo "wrote $out (the administrator's credential is REGISTRATION_BOOTSTRAP_ADMIN_CLIENT_ID/_SECRET)"
