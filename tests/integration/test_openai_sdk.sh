#!/usr/bin/env bash
# test_openai_sdk.sh - the official openai SDK (npm), unchanged, against
# the daemon's OpenAI door on the built-in mock: create, streams (chunks
# and the stream helper's final completion), models.list, the response headers,
# and the SDK's error classes for 404, 400 and 401. Installed once into
# build/npm; skipped with a message when npm is absent.
# Prints "openai_sdk: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

SDK_VERSION=4.95.0
DPORT=$(free_port)
CONF="$WORK/pipelined.conf"
cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$WORK/control.sock";
workers = 1;
clients = { api_keys = ( "sk-sdk-client" ); };
providers = ( { name = "local"; type = "mock"; } );
virtual_models = ( { name = "default";
                     targets = ( { provider = "local"; model = "mock-small"; } ); } );
CONF
chmod 600 "$CONF"

echo "the official SDK (openai)"
SDK_DIR=$(npm_package openai "$SDK_VERSION" 2>"$WORK/npm.err"); rc=$?
if [ $rc -eq 2 ]; then
    echo "  SKIP the SDK checks: npm (or node) is not installed"
    ok "skipped: no npm"
elif [ $rc -ne 0 ]; then
    fail "npm install openai: $(cat "$WORK/npm.err")"
else
    start_daemon "$CONF"
    run_node_checks openai_sdk.mjs "$SDK_DIR" \
        OPENAI_BASE_URL="http://127.0.0.1:$DPORT/v1" OPENAI_API_KEY=sk-sdk-client
    check_nomatch "no client key in the log" 'sk-sdk-client' "$(cat "$DLOG")"
    stop_daemon
    check "exit status 0 after SIGTERM" 0 "$DRC"
fi
summary openai_sdk
