#!/usr/bin/env bash
# test_privs.sh - the daemon started as root (as here and in CI):
# 1. a token file in a directory its user owns is rewritten as that user
#    (it stays theirs); replaced by that user with a symlink to a root
#    file, it is not written through by the next refresh
#    (the root file keeps its content, mode, owner and inode), the log
#    says why, and the refreshed tokens keep serving from memory;
# 2. `user = "nobody"`: the master stays root and binds, the workers run
#    as nobody (their /proc/PID/status), requests work, and a refresh
#    writes the token file as nobody;
# 3. `pipelinectl login` run as root: refused through the planted link,
#    and with `user` set it writes the token file as that user;
# 4. not started as root, `user` is ignored with a warning.
# Uses `nobody`/`nogroup` (present on Debian); changes no account.
# Prints "privs: N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

if [ "$(id -u)" != 0 ] || ! id nobody >/dev/null 2>&1; then
    echo "privs: needs root and a 'nobody' user; skipped"
    summary privs
    exit $?
fi
NOBODY_UID=$(id -u nobody)
NOBODY_GID=$(id -g nobody)
WAIT=${WAIT_S:-60}
[ -n "${VALGRIND:-}" ] && WAIT=180
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
mstat() {  # mstat MOCKPORT KEY: a number or string from the mock's /stats
    curl -s "http://127.0.0.1:$1/stats" | grep -o "\"$2\":\"\?[^,\"}]*" |
        head -1 | sed 's/.*:"\?//'
}
mctl() { curl -s -X POST "http://127.0.0.1:$1/control?$2" >/dev/null; }
# write_qwen FILE ACCESS REFRESH PORT: a token file, the user's, 0600.
write_qwen() {
    printf '{"access_token":"%s","refresh_token":"%s","token_type":"Bearer","resource_url":"http://127.0.0.1:%s","expiry_date":%s}\n' \
        "$2" "$3" "$4" $(( $(now_ms) + 3600000 )) >"$1"
    chmod 600 "$1"
    chown nobody:"$NOBODY_GID" "$1"
}
# fileid FILE: what must not change about a file we own.
fileid() { stat -c '%i %s %a %u %g %Y' "$1"; sha256sum <"$1" | cut -d' ' -f1; }

# The user must reach its directory inside our 0700 work directory.
chmod 711 "$WORK"
start_oauth_mock QA

echo "# a link planted in the user's directory"
UHOME="$WORK/home"
mkdir -m 700 "$UHOME"
chown nobody:"$NOBODY_GID" "$UHOME"
QTOK="$UHOME/oauth_creds.json"
write_qwen "$QTOK" at-0 rt-0 "$QA_PORT"
mkdir -m 755 "$WORK/rootfiles"
VICTIM="$WORK/rootfiles/precious.conf"
printf 'root_setting = 1\n' >"$VICTIM"
chmod 644 "$VICTIM"
DPORT=$(free_port)
SOCK="$WORK/control.sock"
CONF="$WORK/link.conf"
cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$SOCK";
workers = 1;
retry = { max_retries = 2; base_delay_ms = 10; max_delay_ms = 50; };
providers = (
  { name = "qwen"; type = "qwen"; auth = "oauth"; token_file = "$QTOK";
    oauth_base_url = "http://127.0.0.1:$QA_PORT"; }
);
virtual_models = (
  { name = "q"; targets = ( { provider = "qwen"; model = "qwen3-coder-plus"; } ); }
);
CONF
start_daemon "$CONF"
code=$(post "$(msg q)"); check "request with the user's token file" 200 "$code"
# A refresh while the file is the user's own: written as the user.
mctl "$QA_PORT" invalidate_access=1
code=$(post "$(msg q)"); check "refreshed" 200 "$code"
check "one refresh" 1 "$(mstat "$QA_PORT" refresh)"
check "the token file stays the user's, 0600" "$NOBODY_UID $NOBODY_GID 600" \
    "$(stat -c '%u %g %a' "$QTOK")"
check_match "it holds the new access token" \
    "\"access_token\": *\"$(mstat "$QA_PORT" access)\"" "$(cat "$QTOK")"
# The user swaps the token file for a link to a root file (atomically).
ln -s "$VICTIM" "$UHOME/planted"
chown -h nobody:"$NOBODY_GID" "$UHOME/planted"
mv -T "$UHOME/planted" "$QTOK"
before=$(fileid "$VICTIM")
# The API refuses the token: the worker refreshes, saves, retries.
mctl "$QA_PORT" invalidate_access=1
code=$(post "$(msg q)"); check "answered with refreshed tokens" 200 "$code"
check "a second refresh" 2 "$(mstat "$QA_PORT" refresh)"
check "the root file is untouched" "$before" "$(fileid "$VICTIM")"
check "the root file still holds its text" "root_setting = 1" "$(cat "$VICTIM")"
check "the planted link is left as it is" "$VICTIM" "$(readlink "$QTOK")"
check "no temporary file anywhere" "" \
    "$(find "$UHOME" "$WORK/rootfiles" -name '*.tmp.*' | tr '\n' ' ')"
check_match "the log says why nothing was saved" \
    "new tokens not saved: refusing to write through the symlink $QTOK as root" \
    "$(cat "$DLOG")"
code=$(post "$(msg q)"); check "service goes on with the tokens in memory" 200 "$code"
check "no third refresh" 2 "$(mstat "$QA_PORT" refresh)"
stop_daemon
check "daemon exits 0" 0 "$DRC"

echo "# user = \"nobody\": the workers drop root"
start_oauth_mock QB
NHOME="$WORK/nobody"
mkdir -m 700 "$NHOME"
chown nobody:"$NOBODY_GID" "$NHOME"
NTOK="$NHOME/oauth_creds.json"
write_qwen "$NTOK" at-0 rt-0 "$QB_PORT"
DPORT=$(free_port)
CONF="$WORK/user.conf"
cat >"$CONF" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$SOCK";
workers = 2;
user = "nobody";
retry = { max_retries = 2; base_delay_ms = 10; max_delay_ms = 50; };
providers = (
  { name = "local"; type = "mock"; },
  { name = "qwen"; type = "qwen"; auth = "oauth"; token_file = "$NTOK";
    oauth_base_url = "http://127.0.0.1:$QB_PORT"; }
);
virtual_models = (
  { name = "m"; targets = ( { provider = "local"; model = "mock-small"; } ); },
  { name = "q"; targets = ( { provider = "qwen"; model = "qwen3-coder-plus"; } ); }
);
CONF
mv "$DLOG" "$WORK/link.log"     # the next daemon logs afresh
if ! out=$("$BIN/pipelined" -t -c "$CONF" 2>&1); then
    fail "user = \"nobody\" is accepted: $out"
    summary privs
    exit $?
fi
start_daemon "$CONF"
code=$(post "$(msg m)"); check "a request served by a worker" 200 "$code"
pids=$("$BIN/pipelinectl" -s "$SOCK" --json workers | grep -o '"pid":[0-9]*' |
       cut -d: -f2)
check "two workers" 2 "$(echo "$pids" | grep -c .)"
for p in $pids; do
    check "worker $p runs as nobody" \
        "$NOBODY_UID $NOBODY_UID $NOBODY_UID $NOBODY_UID" \
        "$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$p/status")"
    check "worker $p has nobody's group" \
        "$NOBODY_GID $NOBODY_GID $NOBODY_GID $NOBODY_GID" \
        "$(awk '/^Gid:/ { print $2, $3, $4, $5 }' "/proc/$p/status")"
    check_nomatch "worker $p keeps no root group" '(^| )0( |$)' \
        "$(awk '/^Groups:/ { $1 = ""; print }' "/proc/$p/status")"
done
check "the master stays root" 0 "$(awk '/^Uid:/ { print $3 }' "/proc/$DPID/status")"
check "control socket: root's, 0600" "0 600" "$(stat -c '%u %a' "$SOCK")"
check_match "the log names the workers' user" "workers run as user nobody" "$(cat "$DLOG")"
code=$(post "$(msg q)"); check "the worker reads the user's token file" 200 "$code"
mctl "$QB_PORT" invalidate_access=1
code=$(post "$(msg q)"); check "refreshed by a worker as nobody" 200 "$code"
check "one refresh" 1 "$(mstat "$QB_PORT" refresh)"
check "token file rewritten by nobody, 0600" "$NOBODY_UID 600" "$(stat -c '%u %a' "$NTOK")"
check_match "it holds the new access token" \
    "\"access_token\": *\"$(mstat "$QB_PORT" access)\"" "$(cat "$NTOK")"
stop_daemon
check "daemon exits 0" 0 "$DRC"

echo "# pipelinectl login as root: the same rules"
oauth_control QA 'pending=0&device=ok&interval=0' >/dev/null
out=$("$BIN/pipelinectl" -c "$WORK/link.conf" login qwen 2>&1); rc=$?
check "login through the planted link: exit 1" 1 "$rc"
check_match "it says why" "refusing to write through the symlink $QTOK as root" "$out"
check "the root file is still untouched" "$before" "$(fileid "$VICTIM")"
# A directory of root's that nobody's group may write: root would write
# the file as root; the login, as nobody, makes it nobody's.
mkdir -m 770 "$WORK/shared"
chgrp "$NOBODY_GID" "$WORK/shared"
STOK="$WORK/shared/creds.json"
cat >"$WORK/login.conf" <<CONF
user = "nobody";
providers = (
  { name = "qwen"; type = "qwen"; auth = "oauth"; token_file = "$STOK";
    oauth_base_url = "http://127.0.0.1:$QB_PORT"; }
);
virtual_models = (
  { name = "q"; targets = ( { provider = "qwen"; model = "qwen3-coder-plus"; } ); }
);
CONF
oauth_control QB 'pending=0&device=ok&interval=0' >/dev/null
out=$("$BIN/pipelinectl" -c "$WORK/login.conf" login qwen 2>&1); rc=$?
check "login with user = nobody: exit 0" 0 "$rc"
check "the token file is nobody's, 0600" "$NOBODY_UID 600" "$(stat -c '%u %a' "$STOK" 2>&1)"
check_match "with the login's tokens" \
    "\"access_token\": *\"$(mstat "$QB_PORT" access)\"" "$(cat "$STOK" 2>&1)"

echo "# not started as root: user is ignored, with a warning"
if command -v setpriv >/dev/null; then
    NB="$WORK/nb"
    mkdir -m 700 "$NB"
    chown nobody:"$NOBODY_GID" "$NB"
    DPORT=$(free_port)
    cat >"$NB/p.conf" <<CONF
listen = "127.0.0.1:$DPORT";
control_socket = "$NB/control.sock";
workers = 1;
user = "root";
providers = ( { name = "local"; type = "mock"; } );
virtual_models = (
  { name = "m"; targets = ( { provider = "local"; model = "mock-small"; } ); }
);
CONF
    chmod 644 "$NB/p.conf"
    DLOG="$NB/daemon.log"
    setpriv --reuid=nobody --regid="$NOBODY_GID" --clear-groups \
        ${VALGRIND:-} "$BIN/pipelined" -c "$NB/p.conf" >>"$DLOG" 2>&1 &
    DPID=$!
    PIDS+=($DPID)
    if wait_until "$WAIT" curl -sf "http://127.0.0.1:$DPORT/health"; then
        code=$(post "$(msg m)"); check "serves as nobody" 200 "$code"
        check_match "says user is ignored" \
            'user "root" ignored: not started as root' "$(cat "$DLOG")"
        check "the master is still nobody" "$NOBODY_UID" \
            "$(awk '/^Uid:/ { print $3 }' "/proc/$DPID/status")"
        stop_daemon
        check "daemon exits 0" 0 "$DRC"
    else
        fail "daemon started as nobody with user = \"root\": $(tail -3 "$DLOG")"
    fi
fi

summary privs
