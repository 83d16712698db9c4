#!/usr/bin/env bash
# stop_cluster.sh STATE_DIR - stop the daemons that start_cluster.sh STATE_DIR started.
#
# Stops them by the PIDs in STATE_DIR/run/*.pid (checking that each PID still is that
# daemon; all five at once, SIGKILL after 15 s), and removes the
# /etc/slurm/slurm.conf symlink when it points into STATE_DIR.  Idempotent: safe to run
# again, after a failed start, or when nothing is running.  Logs and state stay under
# STATE_DIR.  Exits non-zero only if a daemon survived SIGKILL.
set -uo pipefail

if [ $# -lt 1 ] || [ -z "$1" ]; then
  echo "usage: stop_cluster.sh STATE_DIR" >&2
  exit 2
fi
[ -d "$1" ] || { echo "[stop_cluster] $1: no such directory, nothing to stop"; exit 0; }
DIR=$(cd "$1" && pwd -P)
RUN=$DIR/run
export SLURM_CONF=$DIR/etc/slurm.conf
export PATH=/usr/sbin:/sbin:/usr/bin:/bin:$PATH
status=0

# is_daemon PID NAME: PID is alive and is NAME (guards against a reused PID); the
# command name or the executable's name starts with NAME (Debian runs e.g. slurmd-wlm)
is_daemon() {
  kill -0 "$1" 2>/dev/null || return 1
  local comm exe
  comm=$(cat "/proc/$1/comm" 2>/dev/null || true)
  exe=$(basename "$(readlink "/proc/$1/exe" 2>/dev/null || true)")
  [[ -z $comm$exe || $comm == "$2"* || $exe == "$2"* ]]
}

# stop NAME=PIDFILE... : SIGTERM to each that runs, then wait for all of them together,
# SIGKILL after 15 s
stop() {
  local spec name pf pid left
  local -a names=() pids=() pfs=()
  for spec in "$@"; do
    name=${spec%%=*} pf=${spec#*=}
    [ -s "$pf" ] || continue
    pid=$(tr -dc 0-9 <"$pf")
    if [ -n "$pid" ] && is_daemon "$pid" "$name"; then
      kill -TERM "$pid" 2>/dev/null
      names+=("$name") pids+=("$pid") pfs+=("$pf")
    else
      rm -f "$pf" # stale: that process is gone
    fi
  done
  for sig in TERM KILL; do
    for _ in $(seq 150); do
      left=0
      for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && left=1; done
      ((left)) || break
      sleep 0.1
    done
    ((left)) || break
    [ $sig = KILL ] && break
    for i in "${!pids[@]}"; do
      if kill -0 "${pids[$i]}" 2>/dev/null; then
        echo "[stop_cluster] ${names[$i]} (${pids[$i]}) ignored SIGTERM for 15 s, sending SIGKILL"
        kill -KILL "${pids[$i]}" 2>/dev/null
      fi
    done
  done
  for i in "${!pids[@]}"; do
    if kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "[stop_cluster] ${names[$i]} (${pids[$i]}) is still running" >&2
      status=1
    else
      echo "[stop_cluster] ${names[$i]} (${pids[$i]}) stopped"
      rm -f "${pfs[$i]}"
    fi
  done
}

# cancel what is still queued or running, so that slurmd has no job steps left behind
if [ -s "$RUN/slurmctld.pid" ] && is_daemon "$(tr -dc 0-9 <"$RUN/slurmctld.pid")" slurmctld; then
  timeout 10 scancel --user=root >/dev/null 2>&1 || true
  for _ in $(seq 50); do
    [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null)" ] && break
    sleep 0.1
  done
fi

# all at once: each takes 1-3 s to exit and the state is thrown away, so order does not matter
stop slurmd="$RUN/slurmd.pid" slurmctld="$RUN/slurmctld.pid" slurmdbd="$RUN/slurmdbd.pid" mariadbd="$RUN/mariadb.pid" munged="$RUN/munged.pid"

# the symlink start_cluster.sh made, if it is still ours
if [ -L /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" = "$DIR/etc/slurm.conf" ]; then
  rm -f /etc/slurm/slurm.conf
fi
exit $status
