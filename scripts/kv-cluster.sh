#!/usr/bin/env bash
# Starts a local keel-kv cluster of three processes on 127.0.0.1 (`make run`),
# waits until a leader is ready, prints commands to try, and stops all three
# cleanly on Ctrl-C. Data lives under ./data/ (KEEL_KV_DATA) and is reused by
# the next run; `make run-clean` (--clean) starts fresh.
#
#   scripts/kv-cluster.sh [--clean] [--smoke]
#
# --smoke: instead of waiting for Ctrl-C, write and read a key through the
# client, stop the cluster and exit 0 if all went well (a test runs this).
# KEEL_KV_BIN, KEEL_KV_DATA and KEEL_KV_PORT_BASE (Raft ports BASE+1..3,
# HTTP ports BASE+1001..1003; default 7100) change where things are.
set -euo pipefail

bin=${KEEL_KV_BIN:-build/bin/keel-kv}
data=${KEEL_KV_DATA:-data}
base=${KEEL_KV_PORT_BASE:-7100}
clean=0
smoke=0
for arg in "$@"; do
  case $arg in
    --clean) clean=1 ;;
    --smoke) smoke=1 ;;
    *) echo "kv-cluster: unknown argument $arg (--clean, --smoke)" >&2; exit 2 ;;
  esac
done
[[ -x $bin ]] || { echo "kv-cluster: $bin is missing: run make build" >&2; exit 2; }

members="" http_members="" endpoints=""
for i in 1 2 3; do
  members+="${members:+,}$i=127.0.0.1:$((base + i))"
  http_members+="${http_members:+,}$i=127.0.0.1:$((base + 1000 + i))"
  endpoints+="${endpoints:+,}127.0.0.1:$((base + 1000 + i))"
done

if (( clean )) && [[ -d $data ]]; then
  echo "kv-cluster: removing $data/ (a fresh cluster)"
  rm -rf "$data"
fi
if [[ -f $data/1/keel-kv.identity ]]; then
  echo "kv-cluster: reusing the cluster in $data/ (make run-clean starts fresh)"
else
  echo "kv-cluster: starting a new cluster in $data/"
fi
mkdir -p "$data"

pids=()
stop_all() {
  trap - INT TERM EXIT
  set +e  # stop every server, even if the terminal is gone
  if (( ${#pids[@]} )); then
    printf '\nkv-cluster: stopping the servers\n' 2>/dev/null
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM
# A closed stdout (`make run | head`) must not skip the cleanup: writes fail
# instead, and the script exits through stop_all.
trap '' PIPE

for i in 1 2 3; do
  "$bin" serve --id "$i" --cluster-id 1 --data-dir "$data/$i" \
    --raft-addr "127.0.0.1:$((base + i))" --http-addr "127.0.0.1:$((base + 1000 + i))" \
    --members "$members" --http-members "$http_members" >>"$data/$i.log" 2>&1 &
  pids+=($!)
done

# Ready: some server answers /readyz as the leader.
leader=""
deadline=$((SECONDS + 30))
while (( SECONDS < deadline )); do
  for i in 1 2 3; do
    if ! kill -0 "${pids[$((i - 1))]}" 2>/dev/null; then
      echo "kv-cluster: server $i exited; its log ($data/$i.log) ends with:" >&2
      tail -5 "$data/$i.log" >&2
      exit 1
    fi
    if out=$("$bin" status --endpoints "127.0.0.1:$((base + 1000 + i))" --timeout-ms 500 2>/dev/null) &&
        grep -q '"state": "leader"' <<<"$out" && grep -q '"ready": true' <<<"$out"; then
      leader=$i
      break 2
    fi
  done
  sleep 0.1
done
[[ -n $leader ]] || { echo "kv-cluster: no leader after 30 s; logs in $data/" >&2; exit 1; }
follower=$(( leader % 3 + 1 ))

k="$bin"
cat <<TEXT

keel-kv: 3 servers are up; server $leader leads.
  server  raft              http              pid    log
$(for i in 1 2 3; do printf '  %-7s 127.0.0.1:%-7s 127.0.0.1:%-7s %-6s %s\n' "$i" $((base + i)) $((base + 1000 + i)) "${pids[$((i - 1))]}" "$data/$i.log"; done)

Try, in another terminal (--endpoints defaults to these three servers' HTTP
addresses when KEEL_KV_PORT_BASE is 7100):
  $k put greeting hello --endpoints $endpoints
  $k get greeting --endpoints $endpoints
A follower's own copy, without asking the leader:
  $k get greeting --consistency stale --endpoints 127.0.0.1:$((base + 1000 + follower))
Kill the leader, see another take over, and read what was written:
  kill -9 ${pids[$((leader - 1))]}
  $k status --endpoints $endpoints
  $k get greeting --endpoints $endpoints
Or over HTTP: curl -s 127.0.0.1:$((base + 1000 + leader))/v1/status
The cluster page, in a browser: http://127.0.0.1:$((base + 1000 + follower))/

Ctrl-C stops all three (the data stays in $data/; make run-clean starts fresh).
TEXT

if (( smoke )); then
  value="smoke-$$-$RANDOM"
  "$k" put smoke-key "$value" --endpoints "$endpoints" >/dev/null
  got=$("$k" get smoke-key --endpoints "$endpoints" 2>/dev/null)
  [[ $got == "$value" ]] || { echo "kv-cluster: read '$got', wrote '$value'" >&2; exit 1; }
  echo "kv-cluster: smoke test passed (wrote and read smoke-key)"
  exit 0
fi
while true; do sleep 1; done
