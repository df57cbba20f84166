# Shared by the side-by-side benchmarks (sourced): L is the load tool, PIDS the
# servers started, PEERS the peers script.

# cpu_ticks PGID: user+system clock ticks of every process in a process group.
cpu_ticks() { local t=0; for st in /proc/[0-9]*/stat; do read -r -a f < "$st" 2>/dev/null || continue
  [ "${f[4]}" = "$1" ] && t=$((t + f[13] + f[14])); done; echo $t; }

# run NAME PGID load-tool-args…: one bounded run, with the server's CPU µs per operation.
run() { local name=$1 pg=$2; shift 2; local before after out ops
  before=$(cpu_ticks "$pg"); out=$($L "$@"); after=$(cpu_ticks "$pg")
  ops=$(sed -n 's/.* ops=\([0-9]*\).*/\1/p' <<<"$out")
  echo "$name $out server_cpu_us_per_op=$(( ops > 0 ? (after - before) * 1000000 / $(getconf CLK_TCK) / ops : 0 ))"; }

# cleanup stops the servers and Samba.
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; bash $PEERS samba-stop >/dev/null 2>&1 || true; }
