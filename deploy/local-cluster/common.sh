# Shared by deploy/local-cluster/start and stop (sourced, not run).
#
# Everything the local cluster owns lives under one folder, $DIR:
#   cairn.yaml          the cairn.yaml fragment (clusters local_slurm, local_slurm_ssh and local_ssh, ssh_hosts local_login)
#   env                 `export SLURM_CONF=...`: source it before using srun/sbatch/sinfo or starting cairn
#   ports               the ports chosen by the first start (kept so later starts reuse them)
#   munge/              key, socket, pid and log of a private munged
#   slurm/              slurm.conf, controller state, spool, pid and log files
#   ssh/                client key, known_hosts, authorized_keys and one folder per sshd host
#   work/slurm, work/slurm-ssh, work/ssh  the clusters' `workdir` (jobs' working folders), one per cluster
# Nothing is written outside it, except the login user for the SSH hosts (see SSH_USER).

DIR=${CAIRN_LOCAL_CLUSTER_DIR:-/tmp/cairn-local-cluster}
# Login user of the SSH hosts. Its shell is /bin/sh so that each ssh command does not pay for a login
# shell's startup files (root's .bashrc can take a noticeable time on every command).
SSH_USER=${CAIRN_LOCAL_CLUSTER_SSH_USER:-cairn-ssh}
SSH_HOSTS=(127.0.0.2 127.0.0.3)
SLURM_NODES=(n1 n2)

MUNGE_DIR=$DIR/munge
SLURM_DIR=$DIR/slurm
SSH_DIR=$DIR/ssh
SLURM_CONF_FILE=$SLURM_DIR/slurm.conf
FRAGMENT=$DIR/cairn.yaml

die() {
  echo "$PROG: $*" >&2
  exit 1
}

need_root() {
  [ "$(id -u)" -eq 0 ] || die "must run as root: it starts munged, slurmctld, slurmd and sshd and (once) creates the SSH login user '$SSH_USER'"
}

# Absolute path of $DIR, whatever the caller passed (the fragment and every config file use absolute paths).
absolute_dir() {
  case $DIR in
    /*) ;;
    *) DIR=$PWD/$DIR ;;
  esac
  DIR=${DIR%/}
  # The path goes into slurm.conf and sshd_config, which have no quoting (and Slurm expands %).
  case $DIR in
    *[!A-Za-z0-9._/+-]*) die "CAIRN_LOCAL_CLUSTER_DIR may hold only letters, digits and . _ / + - (got: $DIR)" ;;
  esac
}

# The Debian packages are installed by the user or by .ci/run, never here.
find_binary() {
  local name=$1 package=$2 path
  path=$(command -v "$name" 2>/dev/null || true)
  if [ -z "$path" ] && [ -x "/usr/sbin/$name" ]; then path=/usr/sbin/$name; fi
  [ -n "$path" ] || die "'$name' not found: install the Debian package $package (apt-get install -y slurm-wlm munge openssh-server)"
  echo "$path"
}

# True when pid file $1 names a live process that this cluster started: the pid must be alive and its
# command line must mention $DIR (each daemon is given a config or socket path under it), so a pid that
# the kernel reused for an unrelated process is never taken for ours.
ours_alive() {
  local pidfile=$1 pid
  [ -f "$pidfile" ] || return 1
  pid=$(tr -dc '0-9' <"$pidfile")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$DIR/"
}

pid_of() {
  tr -dc '0-9' <"$1"
}

# Pids of the descendants of $1, read from /proc (so that procps is not needed): one pass to collect every
# process's parent, then a walk down from $1.
descendants() {
  local stat line pid ppid
  local -A children=()
  for stat in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"$stat" || continue
    pid=${stat#/proc/}; pid=${pid%/stat}
    # The command name (field 2) may hold spaces and parentheses: the ppid is the second field after the last ')'.
    line=${line##*) }
    ppid=${line#* }; ppid=${ppid%% *}
    children[$ppid]+=" $pid"
  done
  local -a queue=("$1") found=()
  while [ "${#queue[@]}" -gt 0 ]; do
    pid=${queue[0]}
    queue=("${queue[@]:1}")
    for line in ${children[$pid]:-}; do
      found+=("$line"); queue+=("$line")
    done
  done
  echo "${found[@]}"
}

# True when pid $1 exists and is not a zombie (a container's init may never reap what it inherits, and a
# zombie has already exited).
running() {
  local stat
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# Waits until none of the given pids is alive, up to $1 seconds; returns 1 when some are still alive.
wait_gone() {
  local seconds=$1 pid alive
  shift
  local deadline=$((SECONDS + seconds))
  while :; do
    alive=0
    for pid in "$@"; do
      if running "$pid"; then alive=1; fi
    done
    [ "$alive" -eq 0 ] && return 0
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.2
  done
}

# True when something accepts TCP connections on $1:$2 (bash's /dev/tcp, no extra tool needed).
port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}
