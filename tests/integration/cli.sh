#!/bin/bash
# cli.sh - rtcmsctl and rtcms-store as an operator uses them: key files,
# config files and their errors, every store subcommand, tables and --json
# (before and after the command, errors as JSON on stderr, names that are
# not UTF-8; a manager and an agent for the manager commands), exit
# statuses and error messages. Usage: cli.sh BUILD_DIR
set -euo pipefail

BUILD=$(cd "${1:?usage: cli.sh BUILD_DIR}" && pwd)
CTL="$BUILD/rtcmsctl"
STORE="$BUILD/rtcms-store"
DIR=$(mktemp -d /tmp/rtcms-cli-XXXXXX)
PID=""
MPID=""
APID=""
CHECKS=0

cleanup() {
	for p in $APID $MPID $PID; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	rm -rf "$DIR"
}
trap cleanup EXIT

ok() { CHECKS=$((CHECKS + 1)); }
fail() {
	echo "cli.sh: FAILED: $*" >&2
	for l in store manager agent; do
		[ -f "$DIR/$l.log" ] && { echo "-- $l.log" >&2; tail -20 "$DIR/$l.log" >&2; }
	done
	exit 1
}

# expect STATUS PATTERN -- command...: exit status and a pattern in stdout+stderr
expect() {
	local want=$1 pattern=$2
	shift 3
	local out status=0
	out=$("$@" 2>&1) || status=$?
	[ "$status" -eq "$want" ] || fail "'$*' exited $status, expected $want: $out"
	grep -q -- "$pattern" <<<"$out" || fail "'$*' output lacks '$pattern': $out"
	ok
}

# keys
expect 0 "wrote a new cluster key" -- "$CTL" keygen "$DIR/key"
[ "$(stat -c %a "$DIR/key")" = 600 ] || fail "key file mode is not 600"; ok
expect 1 "use --force" -- "$CTL" keygen "$DIR/key"
expect 0 "wrote" -- "$CTL" keygen "$DIR/other.key"
expect 2 "FILE missing" -- "$CTL" keygen
# data keyrings
expect 0 "wrote a new data keyring" -- "$CTL" keygen --data "$DIR/data.keys"
[ "$(stat -c %a "$DIR/data.keys")" = 600 ] || fail "data keyring mode is not 600"; ok
grep -q "^rtcms-data-key-v1 1 " "$DIR/data.keys" || fail "data keyring lacks key 1"; ok
expect 1 "use --force" -- "$CTL" keygen --data "$DIR/data.keys"
out=$("$CTL" --json keygen --data --cipher chacha20-poly1305 --force "$DIR/data.keys")
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["cipher"]=="chacha20-poly1305" and d["key_id"]==1 and len(d["kcv"])==16, d' "$out" ||
	fail "keygen --data --json: $out"; ok
expect 2 "unknown cipher" -- "$CTL" keygen --data --cipher rot13 "$DIR/x.keys"
expect 2 "is for a data key" -- "$CTL" keygen --cipher aes-256-gcm "$DIR/x.keys"

# help and usage
expect 0 "usage: rtcms-store" -- "$STORE" --help
expect 0 "usage: rtcmsctl" -- "$CTL" --help
expect 2 "unknown command" -- "$CTL" frobnicate
expect 2 "unknown store subcommand" -- "$CTL" store frobnicate
expect 0 "store put" -- "$CTL" store --help

# config errors name the file, the line and the field
printf '[store]\nlisten = 127.0.0.1:0\nretain = zero\n' > "$DIR/bad.ini"
expect 2 "bad.ini:3: \[store\] retain" -- "$STORE" --config "$DIR/bad.ini"
printf '[store]\nlisten = 127.0.0.1:0\nmirorr = /x\n' > "$DIR/bad2.ini"
expect 2 "bad2.ini:3: \[store\] mirorr: unknown setting" -- "$STORE" --config "$DIR/bad2.ini"
expect 2 "no mirror directory" -- "$STORE" --key "$DIR/key"
expect 2 "no cluster key" -- "$STORE" --mirror "$DIR/m0"
expect 2 "run \`chmod 600 $DIR/bad.ini\`" -- "$STORE" --mirror "$DIR/m0" --key "$DIR/bad.ini"
chmod 600 "$DIR/bad.ini" # a key others may not read, but not a key
expect 2 "not an rtcms key file" -- "$STORE" --mirror "$DIR/m0" --key "$DIR/bad.ini"

# a store from a config file
cat > "$DIR/store.ini" <<INI
[store]
listen = 127.0.0.1:0
key = $DIR/key
mirror = $DIR/m0
mirror = $DIR/m1
ready_file = $DIR/ready
[log]
level = debug
INI
"$STORE" --config "$DIR/store.ini" 2>"$DIR/store.log" &
PID=$!
for _ in $(seq 200); do [ -s "$DIR/ready" ] && break; sleep 0.05; done
[ -s "$DIR/ready" ] || fail "store did not start"
export RTCMS_KEY="$DIR/key" RTCMS_STORE
RTCMS_STORE=$(cat "$DIR/ready")
ok

# put, list, get
head -c 3000000 /dev/urandom > "$DIR/img"
expect 0 "durable on 2 mirror" -- "$CTL" store put app "$DIR/img" --sequence 1 --node 0x1234 --spec "/bin/app --restore"
expect 0 "already stored" -- "$CTL" store put app "$DIR/img" --sequence 1 --node 0x1234 --spec "/bin/app --restore"
expect 0 "^app " -- "$CTL" store list
expect 0 "0000000000001234" -- "$CTL" store list --node 0x1234
expect 0 "no checkpoints" -- "$CTL" store list --node 0x9999
"$CTL" --json store list | python3 -c 'import json,sys; l=json.load(sys.stdin); assert l[0]["process"]=="app" and l[0]["size"]==3000000' || fail "list --json"; ok
expect 0 "verified, written to" -- "$CTL" store get app --output "$DIR/back"
cmp -s "$DIR/img" "$DIR/back" || fail "get returned other bytes"; ok
"$CTL" store get app --output - | cmp -s - "$DIR/img" || fail "get to stdout"; ok
"$CTL" --json store get app --meta | python3 -c 'import json,sys; m=json.load(sys.stdin); assert m["sequence"]==1 and m["chunks"]==12' || fail "get --meta --json"; ok
expect 1 "no such process" -- "$CTL" store get nobody --output "$DIR/x"

# a small checkpoint is kept inline in meta.db: nothing written to a pack
head -c 4096 /dev/urandom > "$DIR/small.img"
pack_bytes() { find "$DIR/m0/packs" "$DIR/m1/packs" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
bytes=$(pack_bytes)
expect 0 "durable on 2 mirror" -- "$CTL" store put small "$DIR/small.img" --sequence 1
[ "$(pack_bytes)" = "$bytes" ] || fail "a small PUT wrote to a pack"; ok
grep -q "small: the new ones inline in meta.db" "$DIR/store.log" || fail "the store did not log an inline PUT"; ok
expect 0 "verified, written to" -- "$CTL" store get small --output "$DIR/small.back"
cmp -s "$DIR/small.img" "$DIR/small.back" || fail "a small get returned other bytes"; ok
expect 0 "every referenced chunk has a good copy" -- "$CTL" store scrub
expect 0 "deleted every checkpoint of small" -- "$CTL" store delete small --all

# sealed checkpoints: put under the data keyring, no plaintext on any
# mirror, read back only with the keyring, verified by scrub
for i in $(seq 1 40000); do echo "rtcms-cli-secret-$i"; done > "$DIR/secret.img"
expect 0 "durable on 2 mirror" -- "$CTL" --data-keyring "$DIR/data.keys" store put vault "$DIR/secret.img" --sequence 1
if grep -rlq "rtcms-cli-secret" "$DIR/m0" "$DIR/m1"; then fail "a mirror holds plaintext of a sealed checkpoint"; fi; ok
expect 0 "verified, written to" -- "$CTL" --data-keyring "$DIR/data.keys" store get vault --output "$DIR/vault.back"
cmp -s "$DIR/secret.img" "$DIR/vault.back" || fail "a sealed get returned other bytes"; ok
expect 1 "no data keyring" -- "$CTL" store get vault --output "$DIR/x"
"$CTL" keygen --data "$DIR/other.keys" >/dev/null
expect 1 "does not open under data key 1" -- "$CTL" --data-keyring "$DIR/other.keys" store get vault --output "$DIR/x"
[ ! -e "$DIR/x" ] && [ ! -e "$DIR/x.part" ] || fail "a refused sealed get left a file"; ok
expect 0 "every referenced chunk has a good copy" -- "$CTL" store scrub

# key rotation: a pending key, activated; the old one retired still opens
# what it sealed; a keyring without it cannot
cp "$DIR/data.keys" "$DIR/rot.keys"
expect 0 "added data key 2 .*pending" -- "$CTL" datakey add "$DIR/rot.keys" --pending
expect 0 "2 .* pending" -- "$CTL" datakey list "$DIR/rot.keys"
expect 0 "durable on 2 mirror" -- "$CTL" --data-keyring "$DIR/rot.keys" store put vault "$DIR/secret.img" --sequence 2
expect 0 "data key 2 active" -- "$CTL" datakey activate "$DIR/rot.keys" 2
expect 0 "data key 1 retired" -- "$CTL" datakey retire "$DIR/rot.keys" 1
expect 1 "would not be valid" -- "$CTL" datakey retire "$DIR/rot.keys" 2
expect 1 "no data key 9" -- "$CTL" datakey retire "$DIR/rot.keys" 9
[ "$(stat -c %a "$DIR/rot.keys")" = 600 ] || fail "an edited keyring is not mode 600"; ok
"$CTL" --json datakey list "$DIR/rot.keys" | python3 -c 'import json,sys; l=json.load(sys.stdin); assert [k["state"] for k in l]==["retired","active"], l' || fail "datakey list --json"; ok
expect 0 "durable on 2 mirror" -- "$CTL" --data-keyring "$DIR/rot.keys" store put vault "$DIR/secret.img" --sequence 3
for s in 2 3; do
	expect 0 "verified, written to" -- "$CTL" --data-keyring "$DIR/rot.keys" store get vault --sequence $s --output "$DIR/v$s"
	cmp -s "$DIR/secret.img" "$DIR/v$s" || fail "sequence $s read back wrong after the rotation"; ok
done
grep -v "^rtcms-data-key-v1 1 " "$DIR/rot.keys" > "$DIR/only2.keys"; chmod 600 "$DIR/only2.keys"
expect 1 "keyring lacks" -- "$CTL" --data-keyring "$DIR/only2.keys" store get vault --sequence 2 --output "$DIR/x"
expect 0 "verified" -- "$CTL" --data-keyring "$DIR/only2.keys" store get vault --sequence 3 --output "$DIR/x3"
[ ! -e "$DIR/x" ] && [ ! -e "$DIR/x.part" ] || fail "a failed get left a file"; ok
# which data keys still seal kept chunks: 1 (sequence 2, sealed while key 2
# was pending) and 2 (sequence 3); once sequence 2 goes, key 1 seals nothing
keys_json() { "$CTL" --json store keys | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["unknown_chunks"]==0, d; print(" ".join(str(k["key_id"]) for k in d["keys"] if k["chunks"] > 0))'; }
[ "$(keys_json)" = "0 1 2" ] || fail "store keys: $(keys_json), expected 0 1 2"; ok
expect 0 "a data key id not listed seals no chunk" -- "$CTL" store keys
expect 0 "deleted vault incarnation 1 sequence 2" -- "$CTL" store delete vault --incarnation 1 --sequence 2
[ "$(keys_json)" = "0 2" ] || fail "store keys after the delete: $(keys_json), expected 0 2"; ok
expect 2 "usage: store keys" -- "$CTL" store keys extra
expect 2 "not a valid process id" -- "$CTL" store get "a/b" --output "$DIR/x"
expect 2 "needs a value" -- "$CTL" store put app "$DIR/img" --sequence
expect 2 "unknown option --colour" -- "$CTL" store list --colour

# claims
out=$("$CTL" store claim app --claimant manager-1 --lease 60000) || fail "claim"
CLAIM=$(sed -n 's/.*claim \([0-9a-f]\{16\}\).*/\1/p' <<<"$out"); ok
expect 1 "already claimed by manager-1 until" -- "$CTL" store claim app --claimant manager-2
st=0; "$CTL" --json store claim app --claimant manager-2 >"$DIR/out" 2>"$DIR/err" || st=$?
[ "$st" = 1 ] || fail "a refused claim with --json exited $st"
python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); assert e["code"]=="ECLAIMED" and e["claimant"]=="manager-1" and e["until_ms"]>0, e' "$DIR/err" ||
	fail "a refused claim's JSON error: $(cat "$DIR/err")"; ok
[ ! -s "$DIR/out" ] || fail "a refused claim wrote to stdout: $(cat "$DIR/out")"; ok
expect 1 "ECLAIMED" -- "$CTL" store delete app --all
expect 0 "released" -- "$CTL" store release app "$CLAIM"
expect 1 "ENOENT" -- "$CTL" store release app "$CLAIM"
out=$("$CTL" store claim app --claimant manager-2) || fail "claim 2"
CLAIM=$(sed -n 's/.*claim \([0-9a-f]\{16\}\).*/\1/p' <<<"$out"); ok
expect 0 "incarnation 2 on node 0000000000005678" -- "$CTL" store commit app "$CLAIM" --node 0x5678
expect 1 "EFENCED" -- "$CTL" store put app "$DIR/img" --sequence 2
expect 0 "incarnation 2 sequence 2" -- "$CTL" store put app "$DIR/img" --sequence 2 --incarnation 2

# scrub and status, damage included
expect 0 "every referenced chunk has a good copy" -- "$CTL" store scrub
victim=$(find "$DIR/m1/packs" -type f | head -1)
rm -f "$victim"
expect 0 "online" -- "$CTL" store scrub
"$CTL" --json store scrub | python3 -c 'import json,sys; r=json.load(sys.stdin); assert all(m["missing"]==0 for m in r["mirrors"])' || fail "second scrub not clean"; ok
expect 0 "OFFLINE\|online" -- "$CTL" store status
expect 0 "deleted every checkpoint of app" -- "$CTL" store delete app --all

# wrong key, missing key, unreachable store
expect 1 "wrong cluster key" -- "$CTL" --key "$DIR/other.key" store list
expect 1 "no cluster key" -- env -u RTCMS_KEY "$CTL" store list
expect 1 "cannot connect" -- "$CTL" --store 127.0.0.1:1 store list
expect 1 "invalid address" -- "$CTL" --store nowhere store list

# manager commands, without a manager: usage errors exit 2, a closed port 1
expect 0 "checkpoints PROCESS" -- "$CTL" --help
expect 0 "usage: rtcmsctl .*run \[--node HEXID\]" -- "$CTL" run --help
expect 0 "usage: rtcmsctl .*migrate PROCESS" -- "$CTL" migrate app --help
expect 2 "usage: status" -- "$CTL" status extra
expect 2 "usage: run" -- "$CTL" run app
expect 2 "usage: run" -- "$CTL" run --node 2
expect 2 "not a valid process id" -- "$CTL" run "a/b" /bin/true
expect 2 "run: --node: \"xyz\" is not a node id" -- "$CTL" run --node xyz app /bin/true
expect 2 "run: option --node needs a value" -- "$CTL" run --node
expect 2 "run: --env: expected NAME=VALUE" -- "$CTL" run --env FOO app /bin/true
expect 2 "run: --cwd" -- "$CTL" run --cwd no/such/dir app /bin/true
expect 2 "run: unknown option --frob" -- "$CTL" run --frob app /bin/true
expect 2 "usage: migrate" -- "$CTL" migrate
expect 2 "migrate: --to: \"0\" is not a node id" -- "$CTL" migrate app --to 0
expect 2 "unknown option --colour" -- "$CTL" migrate app --colour
expect 2 "usage: drain" -- "$CTL" drain
expect 2 "drain: \"g1\" is not a node id" -- "$CTL" drain g1
expect 2 "usage: checkpoints" -- "$CTL" checkpoints
expect 2 "not a valid process id" -- "$CTL" checkpoints "a b"
expect 1 "status: cannot connect to 127.0.0.1:1" -- "$CTL" --manager 127.0.0.1:1 status
expect 1 "run: cannot connect to 127.0.0.1:1" -- "$CTL" --manager 127.0.0.1:1 run --env A=b app "$CTL" --iterations 3
expect 1 "drain: cannot connect to 127.0.0.1:1" -- env RTCMS_MANAGER=127.0.0.1:1 "$CTL" drain 0000000000000002
expect 1 "checkpoints: invalid address \"nowhere\"" -- "$CTL" --manager nowhere checkpoints app
expect 1 "migrate: cannot connect to 127.0.0.1:1" -- "$CTL" --manager 127.0.0.1:1 migrate app --to 2
expect 0 "  uncordon  *NODE_HEXID" -- "$CTL" --help
expect 0 "  forget  *NODE_HEXID|PROCESS" -- "$CTL" --help
expect 0 "at every manager given" -- "$CTL" drain --help
expect 0 "usage: rtcmsctl \[--manager HOST:PORT\]... cordon NODE_HEXID" -- "$CTL" cordon --help
expect 0 "Refused while the node" -- "$CTL" forget --help
expect 2 "usage: cordon" -- "$CTL" cordon
expect 2 "uncordon: \"zz\" is not a node id" -- "$CTL" uncordon zz
expect 2 "forget: --node or --process, not both" -- "$CTL" forget --node --process x
expect 2 "not a valid process id" -- "$CTL" forget "a b"
expect 2 "more than 16 managers" -- "$CTL" --manager 1:1,2:2,3:3,4:4,5:5,6:6,7:7,8:8,9:9,10:10,11:11,12:12,13:13,14:14,15:15,16:16,17:17 status
expect 1 "cordon: cannot connect to 127.0.0.1:1" -- "$CTL" --manager 127.0.0.1:1 --manager 127.0.0.1:2 cordon 2
expect 1 "cannot connect to 127.0.0.1:2" -- env RTCMS_MANAGER=127.0.0.1:1,127.0.0.1:2 "$CTL" forget 2
expect 1 "drain: cannot connect to 127.0.0.1:1" -- "$CTL" --manager 127.0.0.1:1,127.0.0.1:2 drain 2

# checkpoint areas
expect 0 "created checkpoint area" -- "$CTL" area create "$DIR/area" --capacity 1M
expect 1 "File exists" -- "$CTL" area create "$DIR/area"
expect 0 "no checkpoint committed yet" -- "$CTL" area show "$DIR/area"
expect 1 "not an rtcms checkpoint area" -- "$CTL" area show "$DIR/img"
expect 1 "no such process, checkpoint or claim" -- "$CTL" area capture "$DIR/area" --output "$DIR/x.img"
expect 1 "malformed" -- "$CTL" area install "$DIR/img" "$DIR/area"
expect 2 "usage: area capture" -- "$CTL" area capture "$DIR/area"
expect 2 "usage: rtcmsctl area" -- "$CTL" area

# --json before and after the command: stdout is JSON when the command
# succeeds, every line of stderr a JSON error object when it fails; all of
# it valid UTF-8. json_both STATUS CHECK -- ARGS...: ARGS run twice, with
# --json first and last ("{pos}" in an argument becomes before or after),
# CHECK a python expression over d (the parsed stdout, or the last error
# object) or "".
json_check() {
	python3 - "$@" <<'PY'
import json, sys
out, err, status, check = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
text = open(out, encoding="utf-8").read()   # strict: invalid UTF-8 fails
errs = [json.loads(l) for l in open(err, encoding="utf-8").read().splitlines()]
for e in errs:
    assert isinstance(e, dict) and e["error"] and e["status"] == status, e
if status == 0:
    assert not errs, errs
    d = json.loads(text)
else:
    assert errs, "no JSON error on stderr"
    if text.strip():
        json.loads(text)
    d = errs[-1]
assert not check or eval(check), (check, d)
PY
}
json_both() {
	local want=$1 check=$2 pos
	shift 3
	for pos in before after; do
		local args=() a st=0
		for a in "$@"; do args+=("${a//\{pos\}/$pos}"); done
		if [ $pos = before ]; then
			"$CTL" --json "${args[@]}" >"$DIR/out" 2>"$DIR/err" || st=$?
		else
			"$CTL" "${args[@]}" --json >"$DIR/out" 2>"$DIR/err" || st=$?
		fi
		[ "$st" = "$want" ] || fail "'rtcmsctl ${args[*]}' with --json $pos exited $st, expected $want: $(cat "$DIR/out" "$DIR/err")"
		json_check "$DIR/out" "$DIR/err" "$st" "$check" ||
			fail "'rtcmsctl ${args[*]}' with --json $pos: $(cat "$DIR/out" "$DIR/err")"
		ok
	done
}

json_both 0 'd["key_file"].endswith("j-before.key") or d["key_file"].endswith("j-after.key")' -- keygen "$DIR/j-{pos}.key"
json_both 1 '"use --force" in d["error"] and d["command"]=="keygen"' -- keygen "$DIR/key"
json_both 2 '"FILE missing" in d["error"]' -- keygen
json_both 0 'd["key_id"]==1' -- keygen --data "$DIR/jd-{pos}.keys"
json_both 0 '[k["state"] for k in d]==["retired","active"]' -- datakey list "$DIR/rot.keys"
json_both 0 'd["key_id"]==2 and d["done"]=="add"' -- datakey add "$DIR/jd-{pos}.keys" --pending
json_both 1 '"no data key 9" in d["error"]' -- datakey retire "$DIR/rot.keys" 9
json_both 2 '"unknown command" in d["error"]' -- frobnicate
json_both 2 '"unknown option --colour" in d["error"] and d["command"]=="store"' -- store list --colour
json_both 2 '"give a subcommand" in d["error"]' -- store
json_both 2 '"give a subcommand" in d["error"]' -- area
json_both 0 'd["capacity"]==1048576 and d["path"].endswith("-\u00ff")' -- area create "$DIR/area-{pos}-"$'\xff' --capacity 1M
json_both 0 'd["sequence"]==0 and d["regions"]==[]' -- area show "$DIR/area"
json_both 1 '"not an rtcms checkpoint area" in d["error"]' -- area show "$DIR/img"
json_both 1 '"no such process" in d["error"]' -- area capture "$DIR/area" --output "$DIR/x.img"
json_both 0 'd["copies"]==2 and not d["existed"]' -- store put japp-{pos} "$DIR/img" --sequence 1
json_both 0 'len(d)==1 and d[0]["process"]=="japp-before"' -- store list --process japp-before
json_both 0 'd["sequence"]==1 and d["size"]==3000000' -- store get japp-{pos} --meta
json_both 0 'd["verified"] and d["repaired"]==0' -- store get japp-{pos} --output "$DIR/jback-{pos}"
json_both 1 'd["code"]=="ENOENT"' -- store get nobody --meta
json_both 0 'len(d["mirrors"])==2' -- store status
json_both 0 'd["unrepairable"]==0' -- store scrub
json_both 0 'd=={"ok":True}' -- store delete japp-{pos} --incarnation 1 --sequence 1
json_both 1 '"wrong cluster key" in d["error"]' -- --key "$DIR/other.key" store list
json_both 1 '"cannot connect to 127.0.0.1:1" in d["error"] and d["command"]=="status"' -- --manager 127.0.0.1:1 status
json_both 2 '"usage: status" in d["error"]' -- status extra
st=0; "$CTL" --json --key >"$DIR/out" 2>"$DIR/err" || st=$?
[ "$st" = 2 ] && json_check "$DIR/out" "$DIR/err" 2 '"option --key needs a value" in d["error"]' ||
	fail "--json --key: $(cat "$DIR/err")"; ok
st=0; "$CTL" run --json --manager 127.0.0.1:1 app /bin/true >"$DIR/out" 2>"$DIR/err" || st=$?
[ "$st" = 2 ] && json_check "$DIR/out" "$DIR/err" 2 '"unknown option --manager" in d["error"]' ||
	fail "run --json, usage error: $(cat "$DIR/err")"; ok
st=0; "$CTL" --manager 127.0.0.1:1 run --json app /bin/true --json >"$DIR/out" 2>"$DIR/err" || st=$?
[ "$st" = 1 ] && json_check "$DIR/out" "$DIR/err" 1 '"run: cannot connect" in d["error"]' ||
	fail "run --json, no manager: $(cat "$DIR/err")"; ok

# a manager and an agent whose name is not valid UTF-8: the manager
# commands with --json in both places; the name comes out escaped
"$BUILD/rtcms-manager" --listen 127.0.0.1:0 --store "$RTCMS_STORE" --key "$DIR/key" \
	--agent-lease 1000 --node-timeout 1500 --ready-file "$DIR/mready" 2>"$DIR/manager.log" &
MPID=$!
for _ in $(seq 200); do [ -s "$DIR/mready" ] && break; sleep 0.05; done
[ -s "$DIR/mready" ] || fail "the manager did not start"
export RTCMS_MANAGER
RTCMS_MANAGER=$(cat "$DIR/mready")
"$BUILD/rtcms-agent" --listen 127.0.0.1:0 --manager "$RTCMS_MANAGER" --key "$DIR/key" \
	--node-id 7 --name $'agent-\xff\xc3' --lease 1000 --ready-file "$DIR/aready" 2>"$DIR/agent.log" &
APID=$!
for _ in $(seq 200); do
	"$CTL" --json status 2>/dev/null | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["nodes"] else 1)' && break
	sleep 0.05
done
json_both 0 'd["store_up"] and [n["name"] for n in d["nodes"]]==["agent-\u00ff\u00c3"] and d["nodes"][0]["node"]=="0000000000000007"' -- status
json_both 0 'd["node"]=="0000000000000007" and d["cordoned"] and d["managers"][0]["ok"]' -- cordon 7
json_both 0 'd["cordoned"] is False' -- uncordon 7
json_both 0 'd=={"node":"0000000000000007","moved":0,"failed":0}' -- drain 7
json_both 0 'd["cordoned"] is False' -- uncordon 7
json_both 1 'd["command"]=="forget"' -- forget 7
json_both 1 'd["code"]=="ENOENT"' -- migrate nobody
json_both 0 'd==[]' -- checkpoints nobody
json_both 2 '"not a node id" in d["error"]' -- cordon zz
st=0; "$CTL" run --json --node 99 app /bin/true >"$DIR/out" 2>"$DIR/err" || st=$?
[ "$st" = 1 ] && json_check "$DIR/out" "$DIR/err" 1 'd["command"]=="run"' ||
	fail "run --json on an unknown node: $(cat "$DIR/out" "$DIR/err")"; ok
kill "$APID" "$MPID"; wait "$APID" "$MPID" || true; APID=""; MPID=""
unset RTCMS_MANAGER

kill "$PID"; wait "$PID" || true; PID=""
grep -q "handshake refused" "$DIR/store.log" || fail "wrong key not logged"; ok
echo "cli.sh: $CHECKS checks passed"
