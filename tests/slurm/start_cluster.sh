#!/usr/bin/env bash
# start_cluster.sh STATE_DIR - a real single-node SLURM cluster for the tests.
#
# Brings up Debian's Slurm (munge, MariaDB + slurmdbd so that `sacct` answers, slurmctld,
# slurmd) as plain daemons: no systemd, no cgroups.  Installs the Debian packages with
# apt-get when they are missing.  Everything (config, logs, pid files, spool, database)
# lives under STATE_DIR; the only thing written elsewhere is the symlink
# /etc/slurm/slurm.conf -> STATE_DIR/etc/slurm.conf (see below).  Needs root.
# Idempotent: daemons already running from STATE_DIR are left alone.
#
# Environment (all optional):
#   FAKE_GPUS=N        placeholder "gpu" GRES on the node, so `--gpus=N` jobs are accepted
#                      and scheduled on a machine without a GPU (default 1; 0 = none)
#   PARTITION=NAME     the single partition's name (default "local")
#   SLURM_PORT_BASE=P  slurmctld P, slurmd P+1, slurmdbd P+2 (default 6817)
#   MYSQL_PORT=P       MariaDB TCP port on 127.0.0.1 (default 3307)
#   CRED_EXPIRE=S      job credential lifetime, and so a requeued job's hold, in seconds (default 10;
#                      SLURM's own default is 120)
#
# On success the last line printed is `export SLURM_CONF=STATE_DIR/etc/slurm.conf`.
# On failure one line `start_cluster.sh: FAILED: <reason>` goes to stderr, exit status 1.
# Stop everything again with stop_cluster.sh STATE_DIR (also after a failed start).
set -euo pipefail

fail() { echo "start_cluster.sh: FAILED: $*" >&2; exit 1; }
trap 'rc=$?; echo "start_cluster.sh: FAILED: command \"$BASH_COMMAND\" exited with status $rc (line $LINENO)" >&2; exit 1' ERR

[ $# -ge 1 ] && [ -n "$1" ] || fail "usage: start_cluster.sh STATE_DIR"
[ "$(id -u)" -eq 0 ] || fail "must run as root (it installs packages and runs the Slurm daemons as root)"

mkdir -p "$1"
DIR=$(cd "$1" && pwd -P)
FAKE_GPUS=${FAKE_GPUS:-1}
PARTITION=${PARTITION:-local}
PORT=${SLURM_PORT_BASE:-6817}
MYSQL_PORT=${MYSQL_PORT:-3307}
CRED_EXPIRE=${CRED_EXPIRE:-10}
ETC=$DIR/etc RUN=$DIR/run LOG=$DIR/log SPOOL=$DIR/spool
MUNGE_SOCK=$RUN/munge.socket
MYSQL_SOCK=$RUN/mysqld.sock
export SLURM_CONF=$ETC/slurm.conf
export PATH=/usr/sbin:/sbin:/usr/bin:/bin:$PATH

[[ $FAKE_GPUS =~ ^[0-9]+$ ]] || fail "FAKE_GPUS must be a non-negative integer, got '$FAKE_GPUS'"
[[ $CRED_EXPIRE =~ ^[0-9]+$ ]] || fail "CRED_EXPIRE must be a number of seconds, got '$CRED_EXPIRE'"
# unix socket paths are limited to 107 bytes
((${#MYSQL_SOCK} < 100)) || fail "state directory path too long for unix sockets: $DIR"

T0=$(date +%s.%N)
phase() { awk -v a="$T0" -v b="$(date +%s.%N)" -v m="$1" 'BEGIN{printf "[start_cluster] %-24s %5.1fs\n", m, b-a}'; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
last_log() { [ -s "$1" ] && tail -n 1 "$1" | tr -d '\r' | cut -c1-300 || echo "(no log at $1)"; }
# wait_for SECONDS LOGFILE DESCRIPTION CMD... : poll CMD every 0.2 s until it succeeds
wait_for() {
  local n=$1 log=$2 what=$3; shift 3
  local end=$((SECONDS + n))
  while ((SECONDS < end)); do
    timeout 5 "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  fail "$what not ready after ${n}s; last line of $log: $(last_log "$log")"
}
need_port() {  # need_port PORT DAEMON : the port must be free before DAEMON starts
  if port_busy "$1"; then fail "port $1 needed by $2 is already in use (another cluster running? stop it first)"; fi
}

# ------------------------------------------------------------------------ packages
PKGS=(munge slurm-client slurmctld slurmd slurmdbd mariadb-server)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || fail "packages ${missing[*]} are missing and there is no apt-get (Debian/Ubuntu only)"
  mkdir -p "$DIR/log"
  APT_LOG=$DIR/log/apt.log
  echo "[start_cluster] installing ${missing[*]}"
  # The packages' maintainer scripts would start system-wide munge, MariaDB and Slurm
  # services (on a machine with systemd); this script starts its own daemons below, so
  # forbid that with a policy-rc.d for the duration of the install, unless one exists.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
    trap '[ $own_policy = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt_opts=(-qq -o DPkg::Lock::Timeout=300)
  apt-get "${apt_opts[@]}" update >"$APT_LOG" 2>&1 || fail "apt-get update failed; see $APT_LOG: $(last_log "$APT_LOG")"
  DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" \
    >>"$APT_LOG" 2>&1 || fail "apt-get install ${missing[*]} failed; see $APT_LOG: $(last_log "$APT_LOG")"
  if [ $own_policy = 1 ]; then rm -f /usr/sbin/policy-rc.d; own_policy=0; fi
  phase "packages installed"
fi
for b in munged munge unmunge mariadbd mariadb-install-db mariadb-admin mariadb slurmdbd slurmctld slurmd sacctmgr scontrol sinfo; do
  command -v "$b" >/dev/null || fail "'$b' not found after installing the packages"
done

mkdir -p "$ETC" "$RUN" "$LOG" "$SPOOL/ctld" "$SPOOL/d" "$DIR/munge"
chmod 755 "$DIR" "$ETC" "$RUN" "$LOG"

# fail early, before touching anything (e.g. another cluster's /etc/slurm link), if another
# cluster of this kind runs or a port this cluster needs is taken
if [ -L /etc/slurm/slurm.conf ]; then
  other=$(readlink /etc/slurm/slurm.conf)
  other=${other%/etc/slurm.conf}
  if [ "$other" != "$DIR" ] && alive "$other/run/slurmctld.pid"; then
    fail "another test cluster is running from $other (/etc/slurm/slurm.conf points there); stop it first"
  fi
fi
alive "$RUN/mariadb.pid" || need_port "$MYSQL_PORT" mariadbd
alive "$RUN/slurmdbd.pid" || need_port "$((PORT + 2))" slurmdbd
alive "$RUN/slurmctld.pid" || need_port "$PORT" slurmctld
alive "$RUN/slurmd.pid" || need_port "$((PORT + 1))" slurmd

# ------------------------------------------------------------------------ config
# The node as slurmd sees it (CPUs, Boards, Sockets, Cores, Threads, RealMemory).
HW=$(slurmd -C | head -n 1 | sed 's/^NodeName=[^ ]* //; s/ UpTime=.*//')
[ -n "$HW" ] || fail "'slurmd -C' printed no hardware description"
GRES_TYPES="" NODE_GRES=""
if ((FAKE_GPUS > 0)); then
  GRES_TYPES="GresTypes=gpu"
  NODE_GRES="Gres=gpu:$FAKE_GPUS"
  # slurmd drops a gpu GRES without a device file ("Removing file-less GPU"), so each fake
  # GPU gets a placeholder file; nothing opens them (no cgroup device constraints).
  mkdir -p "$DIR/fakegpu"
  for ((g = 0; g < FAKE_GPUS; g++)); do : >"$DIR/fakegpu/nvidia$g"; done
  printf 'AutoDetect=off\nNodeName=localhost Name=gpu File=%s/fakegpu/nvidia[0-%d]\n' \
    "$DIR" "$((FAKE_GPUS - 1))" >"$ETC/gres.conf.new"
else
  : >"$ETC/gres.conf.new"
fi
cat >"$ETC/slurm.conf.new" <<EOF
# generated by tests/slurm/start_cluster.sh
ClusterName=hacmtest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire: the job credential's lifetime, 120 s by default, is also how long SLURM holds a requeued
# job before starting it again (the node refuses the old instance's revoked credential until then); a
# short one lets the tests see a job requeue itself several times in a minute or two
AuthInfo=socket=$MUNGE_SOCK,cred_expire=$CRED_EXPIRE
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
# no systemd, no cgroups
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# a job without --mem would otherwise get the whole node's memory
DefMemPerCPU=1000
SchedulerType=sched/backfill
# schedule a freshly submitted job at once instead of at the next backfill cycle, and a requeued one
# within seconds of its hold ending (the main loop and backfill run every 5 s, not every 60 / 30 s)
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,sched_interval=5,bf_interval=5
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
Waittime=0
MinJobAge=300
# accounting through slurmdbd, so that sacct answers (the executor plugin polls sacct)
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$((PORT + 2))
# the persistent connection to slurmdbd does not use AuthInfo: name the munge socket here too
AccountingStoragePass=$MUNGE_SOCK
AccountingStorageTRES=gres/gpu
# the executor plugin puts "rule_<name>" into the job comment
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
$GRES_TYPES
NodeName=localhost $HW $NODE_GRES State=UNKNOWN
PartitionName=$PARTITION Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
# a changed config (e.g. another FAKE_GPUS) needs slurmctld and slurmd restarted
if [ -f "$ETC/slurm.conf" ] && ! { cmp -s "$ETC/slurm.conf.new" "$ETC/slurm.conf" && cmp -s "$ETC/gres.conf.new" "$ETC/gres.conf"; }; then
  for d in slurmd slurmctld; do
    if alive "$RUN/$d.pid"; then
      pid=$(cat "$RUN/$d.pid")
      kill "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  done
fi
mv "$ETC/slurm.conf.new" "$ETC/slurm.conf"
mv "$ETC/gres.conf.new" "$ETC/gres.conf"

# The config must ALSO be at the compiled-in default path: inside a batch job the
# snakemake slurm-jobstep plugin removes every SLURM_* variable (SLURM_CONF too) before
# its nested `srun`, which then fails with "fetch_config: DNS SRV lookup failed".
mkdir -p /etc/slurm
if [ -e /etc/slurm/slurm.conf ] && [ ! -L /etc/slurm/slurm.conf ]; then
  fail "/etc/slurm/slurm.conf is a real file (a configured Slurm on this machine?); refusing to replace it"
fi
ln -sfn "$ETC/slurm.conf" /etc/slurm/slurm.conf

cat >"$ETC/slurmdbd.conf" <<EOF
# generated by tests/slurm/start_cluster.sh
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
DbdHost=localhost
DbdPort=$((PORT + 2))
SlurmUser=root
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$MYSQL_PORT
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
EOF
chmod 600 "$ETC/slurmdbd.conf" # slurmdbd insists: it holds the database password

# ------------------------------------------------------------------------ munge
if ! alive "$RUN/munged.pid"; then
  [ -s "$ETC/munge.key" ] || dd if=/dev/urandom of="$ETC/munge.key" bs=1024 count=1 status=none
  chmod 400 "$ETC/munge.key"
  munged --socket="$MUNGE_SOCK" --key-file="$ETC/munge.key" --pid-file="$RUN/munged.pid" \
    --log-file="$LOG/munged.log" --seed-file="$DIR/munge/munged.seed" --force \
    >>"$LOG/munged.log" 2>&1 || fail "munged did not start: $(last_log "$LOG/munged.log")"
fi
wait_for 20 "$LOG/munged.log" munged bash -c "munge -S '$MUNGE_SOCK' -n | unmunge -S '$MUNGE_SOCK'"
phase "munged up"

# ------------------------------------------------------------------------ mariadb
DATADIR=$DIR/mysql
# a throw-away database: no fsync, no doublewrite, small buffers (table creation by
# mariadb-install-db and slurmdbd's first start are fsync-bound otherwise)
MYSQLD_FAST=(--innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --innodb-flush-method=nosync
  --innodb-buffer-pool-size=32M --innodb-log-file-size=16M --skip-log-bin --skip-name-resolve)
if ! alive "$RUN/mariadb.pid"; then
  need_port "$MYSQL_PORT" mariadbd
  if [ ! -d "$DATADIR/mysql" ]; then
    mariadb-install-db --no-defaults --user=root --datadir="$DATADIR" \
      --auth-root-authentication-method=socket --skip-test-db "${MYSQLD_FAST[@]}" \
      >"$LOG/mariadb-install.log" 2>&1 ||
      fail "mariadb-install-db failed: $(last_log "$LOG/mariadb-install.log")"
  fi
  # --no-defaults: ignore /etc/mysql (a system MariaDB's config, socket, port)
  nohup mariadbd --no-defaults --user=root --datadir="$DATADIR" \
    --socket="$MYSQL_SOCK" --port="$MYSQL_PORT" --bind-address=127.0.0.1 \
    --pid-file="$RUN/mariadb.pid" --log-error="$LOG/mariadb.err" \
    "${MYSQLD_FAST[@]}" --innodb-lock-wait-timeout=900 >/dev/null 2>&1 </dev/null &
  # nohup execs mariadbd, so $! is its PID: recorded now so that stop_cluster.sh finds it
  # even if this script fails before mariadbd writes the pid file itself
  echo $! >"$RUN/mariadb.pid"
fi
wait_for 60 "$LOG/mariadb.err" mariadbd mariadb-admin --no-defaults --socket="$MYSQL_SOCK" ping
mariadb --no-defaults --socket="$MYSQL_SOCK" -u root <<'SQL' || fail "could not create the accounting database user in MariaDB"
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw';
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmpw';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
SQL
phase "mariadb up"

# ------------------------------------------------------------------------ slurmdbd
if ! alive "$RUN/slurmdbd.pid"; then
  need_port "$((PORT + 2))" slurmdbd
  slurmdbd >>"$LOG/slurmdbd.log" 2>&1 || fail "slurmdbd did not start: $(last_log "$LOG/slurmdbd.log")"
fi
wait_for 60 "$LOG/slurmdbd.log" slurmdbd sacctmgr -n list cluster
phase "slurmdbd up"

# ------------------------------------------------------------------------ slurmctld
if ! alive "$RUN/slurmctld.pid"; then
  need_port "$PORT" slurmctld
  # -i: ignore missing or unreadable state files (first start)
  slurmctld -i >>"$LOG/slurmctld.log" 2>&1 || fail "slurmctld did not start: $(last_log "$LOG/slurmctld.log")"
fi
wait_for 60 "$LOG/slurmctld.log" slurmctld scontrol ping
# slurmctld registers the cluster in slurmdbd itself; make sure all the same
sacctmgr -n -P list cluster format=cluster 2>/dev/null | grep -qx hacmtest ||
  sacctmgr -i add cluster hacmtest >/dev/null 2>&1 || true
phase "slurmctld up"

# ------------------------------------------------------------------------ slurmd
if ! alive "$RUN/slurmd.pid"; then
  rm -f "$RUN/slurmd.pid"
  need_port "$((PORT + 1))" slurmd
  # -N: the node is called "localhost" whatever this machine's hostname is
  slurmd -N localhost >>"$LOG/slurmd.log" 2>&1 || fail "slurmd did not start: $(last_log "$LOG/slurmd.log")"
fi
# wait until the node takes jobs; a node left DRAINED by an earlier registration (e.g.
# another GRES count) keeps that state in the spool: resume it
end=$((SECONDS + 60)) st=""
while ((SECONDS < end)); do
  st=$(timeout 5 sinfo -h -n localhost -o %T 2>/dev/null || true)
  case "$st" in
    idle | mixed | allocated | completing) break ;;
    *drain*) timeout 5 scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true ;;
  esac
  # (the daemonized slurmd writes its pid file a moment after `slurmd` returns)
  if [ -s "$RUN/slurmd.pid" ] && ! alive "$RUN/slurmd.pid"; then
    fail "slurmd exited; last line of $LOG/slurmd.log: $(last_log "$LOG/slurmd.log")"
  fi
  sleep 0.2
done
case "$st" in
  idle | mixed | allocated | completing) ;;
  *) fail "node localhost not usable (state '${st:-unknown}') after 60s; last line of $LOG/slurmd.log: $(last_log "$LOG/slurmd.log")" ;;
esac
phase "slurmd up, node $st"
echo "export SLURM_CONF=$SLURM_CONF"
