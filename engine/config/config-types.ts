// Generated from schemas/config.schema.json by scripts/generate-config-types.ts: do not edit by hand
// (npm run gen:config-types).
/**
 * Settings shared by every DAG of one deployment: folders, database, web, pools, clusters, SSH hosts, connections, secrets, model servers, workers. Found at CAIRN_CONFIG (default cairn.yaml); every key is optional. Environment variables (CAIRN_DAGS, CAIRN_HOME, DATABASE_URL, CAIRN_PORT) override the matching keys.
 */
export interface CairnConfig {
  /**
   * Folder holding DAG and feature view files. Overridden by CAIRN_DAGS. Default: dags/.
   */
  dags_folder?: string
  /**
   * State folder for the embedded database, logs and artifacts. Overridden by CAIRN_HOME. Default: .cairn/ in the working directory.
   */
  home?: string
  /**
   * Postgres URL to use instead of the embedded database. Overridden by DATABASE_URL; prefer that variable to a password written here.
   */
  database_url?: string
  /**
   * The web process (status page and /api/v1).
   */
  web?: {
    /**
     * TCP port. Overridden by CAIRN_PORT. Default: 8080.
     */
    port?: number
    /**
     * Address to listen on, e.g. 127.0.0.1 or 0.0.0.0.
     */
    host?: string
    /**
     * Public URL of the web page, for links in logs and messages (e.g. behind a reverse proxy). An https URL makes session cookies Secure.
     */
    base_url?: string
    /**
     * Believe X-Forwarded-For and X-Forwarded-Proto (only behind a reverse proxy you run; the login rate limit then counts the forwarded address). Default: false.
     */
    trust_proxy?: boolean
    /**
     * Whether GET /metrics needs credentials: false (open, as scrapers expect; the default), true (a bearer token or session of any role), or the least role needed (viewer, operator or admin).
     */
    metrics_auth?: boolean | ('viewer' | 'operator' | 'admin')
    /**
     * Online feature rows the web process keeps in memory for lookups (least recently used out first; about 0.9 KB each for a view of four features); a materialization's rows reach lookups as soon as it commits. 0 turns the cache off. Default: 100000.
     */
    online_cache_rows?: number
  }
  /**
   * Named concurrency limits; a task with `pool: NAME` takes one slot while it runs.
   */
  pools?: {
    [k: string]:
      | {
          /**
           * Tasks of this pool that may run at once.
           */
          slots: number
          /**
           * What the pool guards, shown in listings.
           */
          description?: string
        }
      | undefined
  }
  /**
   * Named clusters for the train operator (`cluster: NAME`): a fixed list of SSH hosts, or a Slurm cluster.
   */
  clusters?: {
    [k: string]:
      | ((SshCluster | SlurmCluster) & {
          /**
           * ssh: run ranks on listed hosts over SSH; slurm: submit a Slurm job.
           */
          kind: 'ssh' | 'slurm'
        })
      | undefined
  }
  /**
   * Named SSH logins, referred to by name (a Slurm cluster's submit.host). Host keys are always checked against known_hosts_file.
   */
  ssh_hosts?: {
    [k: string]:
      | {
          /**
           * Host name or IP address.
           */
          host: string
          /**
           * SSH port. Default: 22.
           */
          port?: number
          /**
           * Login user.
           */
          user: string
          /**
           * Private key file.
           */
          identity_file: string
          /**
           * known_hosts file holding this host's key.
           */
          known_hosts_file: string
        }
      | undefined
  }
  /**
   * Named external systems, referred to by operators (e.g. ingest source `connection: NAME`). Give exactly one of url or url_env.
   */
  connections?: {
    [k: string]:
      | ((
          | {
              url: unknown
            }
          | {
              url_env: unknown
            }
        ) & {
          /**
           * Kind of system.
           */
          kind: 'postgres' | 'http'
          /**
           * URL written here. Use url_env instead when it holds a password.
           */
          url?: string
          /**
           * Name of the environment variable that holds the URL (preferred: keeps passwords out of this file).
           */
          url_env?: string
          /**
           * What the connection is for.
           */
          description?: string
        })
      | undefined
  }
  /**
   * Where `{{ secrets.NAME }}` is looked up: the environment variable <env_prefix>NAME, else the file NAME in dir.
   */
  secrets?: {
    /**
     * Folder holding one file per secret, named after it.
     */
    dir?: string
    /**
     * Prefix of secret environment variables.
     */
    env_prefix?: string
  }
  /**
   * The model server (`cairn serve`, and the one `cairn up` runs): Open Inference Protocol v2 over HTTP for the production and canary versions of every model.
   */
  serve?: {
    /**
     * TCP port. Overridden by CAIRN_SERVE_PORT. Default: 8081.
     */
    port?: number
    /**
     * Address to listen on, e.g. 127.0.0.1 or 0.0.0.0. Default: 127.0.0.1.
     */
    host?: string
    /**
     * bearer: inference and metadata need an API token of any role (Authorization: Bearer); none: anyone who reaches the port may call the models. Health routes and /metrics are always open. Default: bearer.
     */
    auth?: 'bearer' | 'none'
    /**
     * Largest request body accepted (bytes, or a size such as 512KB, 4MB); a larger one gets 413. Default: 4MB.
     */
    body_limit?: number | string
    /**
     * Dynamic batching: requests to a model version that arrive while it runs a batch are run together as the next batch, of up to max_batch rows. Only for models whose inputs and outputs all have a dynamic first dimension. Default: off.
     */
    batching?: {
      /**
       * Rows in one batch at most. Default: 64.
       */
      max_batch?: number
      /**
       * How long a request that finds its version idle waits for others to join its batch (milliseconds); 0 runs it at once. Default: 0.
       */
      max_delay_ms?: number
    }
    /**
     * Model threads per loaded version: worker threads, each with its own ONNX Runtime session of the version, that take the runs costing more than handing them over (about 0.05 ms) while other requests are in progress, so that inference and HTTP work overlap on different cores; cheap runs, and any run while the server has nothing else to do, stay on the event loop. 0: every run on the event loop. Each thread holds its own copy of the model's weights. Default: 1.
     */
    threads?: number
  }
  /**
   * Named model servers of this deployment (cairn model servers on its database), referred to by serve.rollout `server: NAME`; a rollout naming a server not listed here (other than `default`, the one `cairn up` runs) is refused by `cairn validate` and fails as invalid params. All of them follow the one model registry: a rollout moves the traffic split on every one and analyses the figures of all of them (docs/serving.md).
   */
  model_servers?: {
    [k: string]:
      | {
          /**
           * Host name or address of the server.
           */
          host?: string
          /**
           * TCP port of the server.
           */
          port?: number
        }
      | undefined
  }
  /**
   * Datasets, the offline feature store and the files ingest may read (SPEC section 7).
   */
  data?: {
    /**
     * Folder of the Parquet files of datasets and offline features. With several machines, a shared filesystem mounted at the same path on every worker. Relative to the working directory. Default: datasets/ under CAIRN_HOME.
     */
    dir?: string
    /**
     * Folders that file sources of ingest (csv, jsonl, parquet) may read, besides the DAG folder and CAIRN_HOME; checked after resolving .. and symbolic links (as Kestra's allowed-paths).
     */
    allowed_paths?: string[]
    /**
     * Threads each DuckDB query of a data operator may use. Default: DuckDB's own (the machine's cores).
     */
    duckdb_threads?: number
    /**
     * Memory limit of each data operator's DuckDB, e.g. 2GB; beyond it DuckDB spills to disk. Default: DuckDB's own (80% of RAM).
     */
    duckdb_memory?: string
  }
  /**
   * Worker processes (in `cairn up` and `cairn worker`).
   */
  workers?: {
    /**
     * Task instances one worker process runs at once.
     */
    concurrency?: number
    /**
     * OS user the tasks' processes run as (never root). When cairn runs as root the default is the system user cairn-task, created when missing (no login shell, no home); a task then cannot read the worker's environment (/proc/PID/environ), cairn's state files, the embedded database's password or the secrets dir. When cairn runs as an ordinary user, tasks run as that same user unless run_as names another, which needs cairn to run as root. See docs/security.md.
     */
    run_as?: string
    /**
     * Queues a worker started with this file takes tasks from, fairly across them (`cairn worker --queue NAME`, repeatable, overrides it). A task's `queue:` (default: default) picks its queue; a task on a queue no worker serves waits queued. When listed, DAGs may name only these queues (and default). Separate teams with per-team queues served by per-team workers, each with its own run_as and secrets dir: see docs/security.md.
     *
     * @minItems 1
     */
    queues?: [string, ...string[]]
    /**
     * Cap of the log stored for one task attempt (UTF-8 bytes of its lines, stdout, stderr and the operator's own lines together): bytes, or a size such as 512KB, 50MB, 1GB (units of 1024). The first half of the cap is kept as written, then the latest lines in a rolling window of the other half; a line in the log says how many lines and bytes were left out between them. Default: 50MB.
     */
    max_log_bytes?: number | string
  }
  /**
   * The scheduler process.
   */
  scheduler?: {
    /**
     * Pause between scheduling passes: 500ms, 30s, 5m, 2h, 1d.
     */
    loop_interval?: string
  }
  /**
   * How long finished runs are kept. The scheduler deletes finished runs (success, failed, cancelled) that ended longer ago than runs_older_than, with their task instances, attempts, log lines and state history, in batches of 500 runs per transaction; one scheduler at a time does it. Queued and running runs are never deleted. `cairn db prune --older-than AGE` does the same once. Default: no retention (runs are kept forever).
   */
  retention?: {
    /**
     * Age after which a finished run is deleted, e.g. 90d or 2160h.
     */
    runs_older_than: string
    /**
     * How often the scheduler looks for runs to delete. Default: 1h.
     */
    interval?: string
  }
  /**
   * Process logging.
   */
  log?: {
    /**
     * Least severe level written.
     */
    level?: 'trace' | 'debug' | 'info' | 'warn' | 'error'
  }
}
export interface SshCluster {
  /**
   * Ranks run on the listed hosts, started over SSH.
   */
  kind: 'ssh'
  /**
   * The nodes, in rank order: the first host is node rank 0 and MASTER_ADDR.
   *
   * @minItems 1
   */
  hosts: [
    {
      /**
       * Host name or IP address to connect to.
       */
      host: string
      /**
       * SSH port. Default: 22.
       */
      port?: number
      /**
       * Login user.
       */
      user: string
      /**
       * Private key file. Default: the SSH agent.
       */
      identity_file?: string
      /**
       * known_hosts file to check this host's key against. Default: the cluster's known_hosts_file. Unknown host keys are always refused.
       */
      known_hosts_file?: string
      /**
       * Address the other ranks use to reach this node (MASTER_ADDR when it is the first host). Default: host.
       */
      address?: string
    },
    ...{
      /**
       * Host name or IP address to connect to.
       */
      host: string
      /**
       * SSH port. Default: 22.
       */
      port?: number
      /**
       * Login user.
       */
      user: string
      /**
       * Private key file. Default: the SSH agent.
       */
      identity_file?: string
      /**
       * known_hosts file to check this host's key against. Default: the cluster's known_hosts_file. Unknown host keys are always refused.
       */
      known_hosts_file?: string
      /**
       * Address the other ranks use to reach this node (MASTER_ADDR when it is the first host). Default: host.
       */
      address?: string
    }[]
  ]
  /**
   * known_hosts file for every host of the cluster. Default: ~/.ssh/known_hosts.
   */
  known_hosts_file?: string
  /**
   * Parent of the per-task working directories on the hosts.
   */
  workdir?: string
}
export interface SlurmCluster {
  /**
   * Training runs as a Slurm job.
   */
  kind: 'slurm'
  /**
   * How sbatch, squeue and scancel are reached.
   */
  submit: {
    /**
     * local: run the Slurm commands on this machine; ssh: on a login node, over SSH.
     */
    via: 'local' | 'ssh'
    /**
     * Name of an entry of `ssh_hosts` (the login node). Required with via: ssh.
     */
    host?: string
    /**
     * Environment variables set for every Slurm command (sbatch, squeue, scontrol, scancel, sacct), e.g. SLURM_CONF when the cluster's configuration is not the default one. With via: ssh they are passed on the login node as `env NAME=value` words of the command (every word quoted); with via: local they are added to the worker's environment. Never taken from DAGs.
     */
    env?: {
      [k: string]: string | undefined
    }
  }
  /**
   * Default partition; a task's slurm.partition overrides it.
   */
  partition?: string
  /**
   * Default account; a task's slurm.account overrides it.
   */
  account?: string
  /**
   * Parent of the per-task working directories, on the cluster's shared file system (an absolute path as the login node and the compute nodes see it). Required with submit.via: ssh.
   */
  workdir?: string
}
