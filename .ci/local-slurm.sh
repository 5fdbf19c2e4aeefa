#!/usr/bin/env bash
# A single-node SLURM cluster on loopback for the real SLURM test (tests/test_workflow.py).
# Adapted from a team recipe; kept in the repository so that CI has it on a clean machine.
# =============================================================================
# slurm_local.sh - a single-node SLURM cluster on loopback, for testing
# Snakemake + snakemake-executor-plugin-slurm for real (sbatch/srun/sacct).
#
# Tested 2026-11 on Debian 12 (bookworm) container, 2 cores, root, gVisor
# kernel, Debian packages slurm-wlm 22.05.8, munge 0.5.15, MariaDB 10.11;
# PyPI: snakemake 9.27.1, snakemake-executor-plugin-slurm 2.8.0,
#       snakemake-executor-plugin-slurm-jobstep 0.6.1.
#
# Usage (as root):
#   bash slurm_local.sh            # = up + test
#   bash slurm_local.sh up         # install packages, start munged/mariadb/slurmdbd/slurmctld/slurmd
#   bash slurm_local.sh test       # venv + snakemake + plugin, run a 3-rule toy workflow via SLURM
#   bash slurm_local.sh status     # sinfo/squeue/sacct and daemon pids
#   bash slurm_local.sh down       # stop every daemon this script started (by pid file), unlink /etc/slurm files
#
# Knobs (environment variables):
#   ACCOUNTING=slurmdbd (default) real accounting: MariaDB + slurmdbd, so `sacct`
#                        works and the plugin runs with its defaults (sacct polling,
#                        account validation via sacctmgr).
#   ACCOUNTING=none      no database; `sacct` answers "Slurm accounting storage is
#                        disabled", so Snakemake MUST be run with
#                        --slurm-status-command squeue (else it hangs forever).
#   FAKE_GPUS=2          expose N fake GPUs as GRES gpu:fake:N (device files are
#                        char devices aliasing /dev/null); 0 disables.
#   ROOT=/tmp/slurm      where config, state, logs, sockets and the database live.
#   VENV=/tmp/slurm/venv   python venv for snakemake.
#   PYTHON=python3       interpreter used to create the venv (needs >= 3.11).
#   SNAKEMAKE_SPEC / PLUGIN_SPEC   pip requirement strings (pinned to tested versions).
#
# Everything lives under $ROOT except two symlinks, /etc/slurm/slurm.conf and
# /etc/slurm/gres.conf: the jobstep plugin that runs *inside* each job strips
# every SLURM_* variable (SLURM_CONF included) before its nested `srun`, so the
# config must be at the compiled-in default path or srun fails with
# "fatal: Could not establish a configuration source".
# =============================================================================
set -euo pipefail

ROOT=${ROOT:-/tmp/slurm}
ACCOUNTING=${ACCOUNTING:-slurmdbd}
FAKE_GPUS=${FAKE_GPUS:-2}
VENV=${VENV:-/tmp/slurm/venv}
PYTHON=${PYTHON:-python3}
SNAKEMAKE_SPEC=${SNAKEMAKE_SPEC:-snakemake==9.27.1}
PLUGIN_SPEC=${PLUGIN_SPEC:-snakemake-executor-plugin-slurm==2.8.0}
CLUSTER=localcluster
ACCOUNT=testacct
DB_PASS=slurmpw          # loopback-only throwaway test database

MUNGE_SOCKET=$ROOT/munge/munge.socket
unset SLURM_CONF || true  # clients must use /etc/slurm/slurm.conf (see header)

T0=$(date +%s)
log()  { printf '[%s +%4ss] %s\n' "$(date +%H:%M:%S)" "$(( $(date +%s) - T0 ))" "$*"; }
die()  { log "ERROR: $*"; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "run as root"; }

# wait_for "description" timeout_s command...
wait_for() {
  local what=$1 t=$2; shift 2
  for _ in $(seq 1 "$t"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  die "timed out after ${t}s waiting for $what"
}

# stop a daemon by its pid file (only processes this script started)
stop_pidfile() {
  local name=$1 pf=$2 pid
  [ -f "$pf" ] || return 0
  pid=$(cat "$pf" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { log "$name still alive, SIGKILL"; kill -9 "$pid" || true; }
  fi
  rm -f "$pf"
}

# -----------------------------------------------------------------------------
install_packages() {
  local pkgs=(slurmctld slurmd slurm-client munge python3-venv)
  [ "$ACCOUNTING" = slurmdbd ] && pkgs+=(slurmdbd mariadb-server)
  log "apt-get update"
  apt-get update -qq
  log "apt-get install ${pkgs[*]}"
  # In a container without systemd the postinst scripts print
  # "invoke-rc.d: policy-rc.d denied execution of start." - harmless, we start daemons by hand.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  log "installed: slurm $(dpkg-query -W -f='${Version}' slurmctld), munge $(dpkg-query -W -f='${Version}' munge)"
}

# -----------------------------------------------------------------------------
start_munge() {
  mkdir -p "$ROOT/munge"
  # munged refuses a socket dir without o+x:
  #   "Socket is inaccessible: execute permissions for all required on <dir>"
  chmod 755 "$ROOT/munge"
  if [ ! -s "$ROOT/munge/munge.key" ]; then
    mungekey --create --keyfile="$ROOT/munge/munge.key" --force
  fi
  chown -R munge:munge "$ROOT/munge"; chmod 600 "$ROOT/munge/munge.key"
  log "starting munged (socket $MUNGE_SOCKET)"
  runuser -u munge -- munged \
    --key-file="$ROOT/munge/munge.key" --socket="$MUNGE_SOCKET" \
    --pid-file="$ROOT/munge/munged.pid" --log-file="$ROOT/munge/munged.log" \
    --seed-file="$ROOT/munge/munged.seed"
  munge -S "$MUNGE_SOCKET" -n | unmunge -S "$MUNGE_SOCKET" >/dev/null || die "munge self-test failed"
}

# -----------------------------------------------------------------------------
write_slurm_conf() {
  mkdir -p "$ROOT"/{etc,state,spool,log,run}
  chown slurm:slurm "$ROOT"/{state,log,run}
  local node hw mem acct gres=""
  node=$(hostname -s)
  # "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
  hw=$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]* //' -e 's/ RealMemory=[0-9]*//')
  mem=$(( $(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p') * 9 / 10 ))
  if [ "$FAKE_GPUS" -gt 0 ]; then
    gres=" Gres=gpu:fake:$FAKE_GPUS"
    for i in $(seq 0 $((FAKE_GPUS - 1))); do
      # slurmd drops file-less GPUs ("Removing file-less GPU") and rejects
      # regular files ("is not a valid character or block device").
      [ -c "$ROOT/fakegpu$i" ] || mknod "$ROOT/fakegpu$i" c 1 3
    done
    echo "Name=gpu Type=fake File=$ROOT/fakegpu[0-$((FAKE_GPUS - 1))]" > "$ROOT/etc/gres.conf"
  else
    : > "$ROOT/etc/gres.conf"
  fi
  if [ "$ACCOUNTING" = slurmdbd ]; then
    acct="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
# the slurmdbd connection does NOT use AuthInfo's socket; it takes the munge
# socket from AccountingStoragePass (otherwise: Munge encode failed: Failed to
# access \"/run/munge/munge.socket.2\")
AccountingStoragePass=$MUNGE_SOCKET
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux"
  else
    acct="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
# sacct cannot read this file in 22.05 except via 'sacct -c'; kept for humans
JobCompType=jobcomp/filetxt
JobCompLoc=$ROOT/log/jobcomp.txt"
  fi
  cat > "$ROOT/etc/slurm.conf" <<EOF
# generated by slurm_local.sh - single node on loopback
ClusterName=$CLUSTER
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$ROOT/state
SlurmdSpoolDir=$ROOT/spool
SlurmctldPidFile=$ROOT/run/slurmctld.pid
SlurmdPidFile=$ROOT/run/slurmd.pid
SlurmctldLogFile=$ROOT/log/slurmctld.log
SlurmdLogFile=$ROOT/log/slurmd.log
# no cgroups: works in unprivileged containers / gVisor
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without a default, a job with no --mem gets the whole node's memory and jobs serialise
DefMemPerCPU=1000
ReturnToService=2
# keep finished jobs visible to squeue/scontrol for 5 min (plugin wants >= 3 x 40 s)
MinJobAge=300
$acct
GresTypes=gpu
NodeName=$node NodeAddr=127.0.0.1 $hw RealMemory=$mem$gres State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  mkdir -p /etc/slurm
  for f in slurm.conf gres.conf; do
    if [ -e "/etc/slurm/$f" ] && [ ! -L "/etc/slurm/$f" ]; then
      mv "/etc/slurm/$f" "/etc/slurm/$f.bak.$(date +%s)"
    fi
    ln -sfn "$ROOT/etc/$f" "/etc/slurm/$f"
  done
  log "wrote $ROOT/etc/slurm.conf (node $node, $hw, RealMemory=$mem$gres)"
}

# -----------------------------------------------------------------------------
start_accounting() {
  [ "$ACCOUNTING" = slurmdbd ] || return 0
  local db=$ROOT/mysql
  mkdir -p "$db"; chown mysql:mysql "$db"
  if [ ! -d "$db/data/mysql" ]; then
    log "initialising MariaDB datadir"
    mariadb-install-db --user=mysql --datadir="$db/data" \
      --auth-root-authentication-method=socket --skip-test-db >"$db/install.log" 2>&1
  fi
  log "starting mariadbd on 127.0.0.1:3306"
  runuser -u mysql -- mariadbd --no-defaults --datadir="$db/data" \
    --socket="$db/mysqld.sock" --pid-file="$db/mysqld.pid" \
    --bind-address=127.0.0.1 --port=3306 --log-error="$db/error.log" \
    --innodb-buffer-pool-size=1G --innodb-lock-wait-timeout=900 \
    </dev/null >/dev/null 2>&1 &
  wait_for "mariadbd socket" 60 test -S "$db/mysqld.sock"
  mariadb --socket="$db/mysqld.sock" -u root -e "
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
    FLUSH PRIVILEGES;"
  cat > "$ROOT/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=slurm
LogFile=$ROOT/log/slurmdbd.log
PidFile=$ROOT/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3306
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
  chown slurm:slurm "$ROOT/etc/slurmdbd.conf"; chmod 600 "$ROOT/etc/slurmdbd.conf"
  log "starting slurmdbd"
  # slurmdbd looks for slurmdbd.conf next to slurm.conf -> point SLURM_CONF at $ROOT/etc
  SLURM_CONF=$ROOT/etc/slurm.conf slurmdbd
  wait_for "slurmdbd" 60 sacctmgr -n -P list cluster
  # cluster/account/user must exist before jobs run, or the plugin's account
  # validation (sacctmgr) rejects them
  sacctmgr -i add cluster "$CLUSTER" >/dev/null || true
  sacctmgr -i add account "$ACCOUNT" Description=test Organization=test >/dev/null || true
  sacctmgr -i add user root Account="$ACCOUNT" DefaultAccount="$ACCOUNT" >/dev/null || true
  log "accounts for root: $(sacctmgr -n -P -s list user root format=account | tr '\n' ' ')"
}

# -----------------------------------------------------------------------------
node_idle() { sinfo -h -o %T | grep -qx idle; }

start_slurm() {
  log "starting slurmctld"
  slurmctld
  wait_for "slurmctld" 60 bash -c "scontrol ping | grep -q UP"
  log "starting slurmd"
  slurmd
  wait_for "node idle" 60 node_idle
  sinfo
}

smoke_test() {
  local out=$ROOT/jobs j
  mkdir -p "$out"
  j=$(cd "$out" && sbatch --parsable --wrap 'hostname; srun -n1 true && echo srun-ok')
  log "sbatch --wrap -> job $j"
  # finished jobs only show up with --states=all (until MinJobAge expires)
  wait_for "job $j to finish" 60 bash -c "squeue -h --states=all -j $j -o %T | grep -qx COMPLETED"
  squeue --states=all -j "$j"
  cat "$out/slurm-$j.out"
  if [ "$ACCOUNTING" = slurmdbd ]; then
    wait_for "job $j in sacct" 30 bash -c "sacct -X -n -P -j $j -o State | grep -qx COMPLETED"
    sacct -X -j "$j" -o JobID,JobName,Account,Partition,State,ExitCode
  else
    sacct -X -j "$j" 2>&1 || true   # prints "Slurm accounting storage is disabled"
  fi
}

cmd_up() {
  need_root
  if [ -f "$ROOT/run/slurmctld.pid" ] || [ -f "$ROOT/munge/munged.pid" ]; then
    log "daemons from an earlier run found; stopping them first"; cmd_down
  fi
  install_packages
  start_munge
  write_slurm_conf
  start_accounting
  start_slurm
  smoke_test
  log "cluster up"
}

# -----------------------------------------------------------------------------
cmd_test() {
  if [ ! -x "$VENV/bin/snakemake" ]; then
    log "creating venv $VENV and installing $SNAKEMAKE_SPEC $PLUGIN_SPEC"
    "$PYTHON" -m venv "$VENV"
    # (the grep only hides this sandbox's harmless pip-config warnings)
    "$VENV/bin/pip" install -q --upgrade pip 2> >(grep -v "is ignored: it is neither" >&2)
    "$VENV/bin/pip" install -q "$SNAKEMAKE_SPEC" "$PLUGIN_SPEC" 2> >(grep -v "is ignored: it is neither" >&2)
  fi
  local wf=$ROOT/toy
  rm -rf "$wf"; mkdir -p "$wf/profiles/slurm"
  cat > "$wf/Snakefile" <<'EOF'
# 3-rule toy workflow: simulate (x2) -> analyse (x2) -> summarise
SAMPLES = ["a", "b"]

localrules: all

rule all:
    input: "results/summary.txt"

rule simulate:
    output: "results/sim/{sample}.txt"
    log: "logs/simulate/{sample}.log"
    resources: mem_mb=200, runtime=5
    shell: "(echo sim {wildcards.sample} on $(hostname) job=${{SLURM_JOB_ID:-local}} > {output}; sleep 3) 2> {log}"

rule analyse:
    input: "results/sim/{sample}.txt"
    output: "results/ana/{sample}.txt"
    log: "logs/analyse/{sample}.log"
    resources: mem_mb=200, runtime=5
    shell: "(wc -c {input} > {output}; cat {input} >> {output}) 2> {log}"

rule summarise:
    input: expand("results/ana/{sample}.txt", sample=SAMPLES)
    output: "results/summary.txt"
    log: "logs/summarise.log"
    resources: mem_mb=200, runtime=5
    shell: "cat {input} > {output} 2> {log}"
EOF
  # workflow profile (profile.yaml or config.yaml both work in Snakemake 9)
  {
    echo "executor: slurm"
    echo "jobs: 2"
    echo "latency-wait: 10"
    echo "default-resources:"
    echo "  slurm_partition: debug"
    [ "$ACCOUNTING" = slurmdbd ] && echo "  slurm_account: $ACCOUNT"
    echo "  mem_mb: 500"
    echo "  runtime: 10"
    echo "slurm-init-seconds-before-status-checks: 5   # default 40; shorter for tests"
    [ "$ACCOUNTING" = none ] && echo "slurm-status-command: squeue   # sacct is disabled without slurmdbd"
  } > "$wf/profiles/slurm/config.yaml"
  log "running toy workflow through SLURM (profile: $wf/profiles/slurm/config.yaml)"
  ( cd "$wf" && "$VENV/bin/snakemake" --workflow-profile profiles/slurm ) > "$ROOT/log/toy_run.log" 2>&1 \
    || { tail -40 "$ROOT/log/toy_run.log"; die "toy workflow failed (log: $ROOT/log/toy_run.log)"; }
  grep -E "submitted with SLURM jobid|steps \(|Elapsed" "$ROOT/log/toy_run.log" || true
  cat "$wf/results/summary.txt"
  grep -q "job=[0-9]" "$wf/results/summary.txt" || die "outputs were not written inside SLURM jobs"
  log "toy workflow completed through SLURM"
}

# -----------------------------------------------------------------------------
cmd_status() {
  for pf in "$ROOT/munge/munged.pid" "$ROOT/mysql/mysqld.pid" "$ROOT/run/slurmdbd.pid" \
            "$ROOT/run/slurmctld.pid" "$ROOT/run/slurmd.pid"; do
    [ -f "$pf" ] && echo "$(basename "$pf" .pid): pid $(cat "$pf")"
  done
  sinfo || true; squeue --states=all || true
  [ "$ACCOUNTING" = slurmdbd ] && sacct -X -o JobID,JobName%12,Account,State | tail -10 || true
}

cmd_down() {
  stop_pidfile slurmd    "$ROOT/run/slurmd.pid"
  stop_pidfile slurmctld "$ROOT/run/slurmctld.pid"   # also ends its child slurmscriptd
  stop_pidfile slurmdbd  "$ROOT/run/slurmdbd.pid"
  stop_pidfile mariadbd  "$ROOT/mysql/mysqld.pid"
  stop_pidfile munged    "$ROOT/munge/munged.pid"
  for f in slurm.conf gres.conf; do
    if [ -L "/etc/slurm/$f" ] && [[ "$(readlink "/etc/slurm/$f")" == "$ROOT"/* ]]; then
      rm -f "/etc/slurm/$f"
    fi
  done
  log "all daemons stopped (state kept in $ROOT; rm -rf $ROOT for a clean slate)"
}

case "${1:-all}" in
  up)     cmd_up ;;
  test)   cmd_test ;;
  status) cmd_status ;;
  down)   cmd_down ;;
  all)    cmd_up; cmd_test ;;
  *)      echo "usage: $0 [up|test|status|down|all]"; exit 2 ;;
esac
