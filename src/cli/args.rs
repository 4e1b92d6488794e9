//! clap definitions of every command and flag.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "Declarative promotion controller for ML model registries";

const LONG_ABOUT: &str = "\
modelsync reads YAML manifests that say which model version belongs in each stage \
(Staging, Production, Archived) and behind each alias (champion, challenger), diffs \
them against a live registry (an MLflow server, or the embedded file registry), and \
applies registrations, promotions and archivals until the registry matches.

Registry: --registry, else MODELSYNC_REGISTRY, else MLFLOW_TRACKING_URI, else \
file:.modelsync/registry.json. Credentials come from MLflow's environment variables \
(MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME/PASSWORD).

Exit codes: 0 ok/no changes, 1 error, 2 changes present (plan --detailed-exitcode), \
3 registry unreachable, 4 saved plan is stale, 5 a gate blocked a move.";

/// The `modelsync` command line.
#[derive(Debug, Parser)]
#[command(name = "modelsync", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Registry URI: http(s)://host:port (MLflow) or file:PATH (embedded).
    #[arg(long, global = true, value_name = "URI")]
    pub registry: Option<String>,
    /// MLflow workspace every request names (X-MLFLOW-WORKSPACE); default
    /// MLFLOW_WORKSPACE. Refused by a server without workspaces.
    #[arg(long, global = true, value_name = "NAME")]
    pub workspace: Option<String>,
    /// More logs on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Colour: auto (only on a terminal, never with NO_COLOR), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests (schema and semantics) without a registry.
    #[command(after_help = "Example:\n  modelsync validate manifests/")]
    Validate(ValidateArgs),
    /// Show what apply would change.
    #[command(after_help = "Examples:\n  modelsync plan manifests/\n  \
        modelsync plan manifests/ --format markdown --detailed-exitcode   # PR comment\n  \
        modelsync plan manifests/ --out plan.json                        # then apply --plan\n  \
        modelsync plan manifests/ --changed-since origin/main            # only what a PR changed")]
    Plan(PlanArgs),
    /// Converge the registry to the manifests, and print a result per action.
    #[command(after_help = "Examples:\n  modelsync apply manifests/\n  \
        modelsync apply --plan plan.json   # exactly what was reviewed; exit 4 if stale")]
    Apply(ApplyArgs),
    /// Write manifests for what is live (adopt a registry), or a snapshot file.
    #[command(
        after_help = "Examples:\n  modelsync export --model nba-game-predictor > manifests/nba.yaml\n  \
        modelsync export --snapshot registry-snapshot.json manifests/   # offline plans"
    )]
    Export(ExportArgs),
    /// Print one version of a model, by stage, alias or number.
    #[command(
        after_help = "Examples:\n  modelsync get nba-game-predictor --alias champion\n  \
        modelsync get nba-game-predictor --stage Production --format json"
    )]
    Get(GetArgs),
    /// Print where a version's bytes are (a URI a model server can fetch)
    /// and their digest.
    #[command(
        after_help = "Examples:\n  modelsync resolve fraud-detector@champion\n  \
        modelsync resolve fraud-detector --stage Production --format json\n  \
        modelsync resolve fraud-detector --version 7\n\n\
        The digest is sha256 over the listing of the files (one \"<sha256> <size> <path>\" line\n\
        per file, sorted by path); docs/serving.md shows how to recompute it with find and\n\
        sha256sum. Refused (exit 1): a location only MLflow can follow (mlflow-artifacts:,\n\
        models:/), and bytes that changed since modelsync recorded their digest."
    )]
    Resolve(ResolveArgs),
    /// Print the promotions recorded by modelsync's audit tags, newest first.
    #[command(after_help = "Example:\n  modelsync history nba-game-predictor")]
    History(HistoryArgs),
    /// Keep the registry equal to a folder or a git branch (a daemon).
    #[command(after_help = "Examples:\n  modelsync watch manifests/\n  \
        modelsync watch --git https://github.com/org/models.git --branch main --path manifests\n  \
        modelsync watch manifests/ --drift warn --resync 10m --listen 127.0.0.1:9464\n  \
        modelsync watch --git https://github.com/org/models.git --once   # one reconcile, apply's exit codes\n\n\
        Endpoints: GET / (status page), /models/NAME, /healthz, /readyz, /metrics (Prometheus),\n\
        /status (JSON); POST /hooks/git.\n\
        Git credentials: MODELSYNC_GIT_TOKEN (https, user MODELSYNC_GIT_USERNAME or x-access-token),\n\
        MODELSYNC_GIT_SSH_KEY or the ssh agent (ssh).")]
    Watch(Box<WatchArgs>),
    /// Sign an approval of one version for a stage or alias: a tag on the
    /// version, or with --out a file for the manifests' repository.
    #[command(after_help = "Examples:\n  \
        modelsync approve fraud-detector --stage Production --version 7 --key ~/.ssh/id_ed25519\n  \
        modelsync approve fraud-detector --alias champion --key ~/.ssh/id_ed25519 --out manifests/\n  \
        modelsync approve fraud-detector --stage Production --version 7 --principal alice --print-statement > s\n  \
        ssh-keygen -Y sign -n modelsync-approval -f ~/.ssh/id_ed25519 s   # then store s and s.sig\n\n\
        The statement, its storage and how to check one with ssh-keygen: docs/approvals.md.")]
    Approve(ApproveArgs),
    /// Sign a rejection (the arguments of approve): the version's approvals
    /// gate blocks until the same principal signs a later approval or the
    /// rejection is removed.
    #[command(
        after_help = "Example:\n  modelsync reject fraud-detector --stage Production --version 7 --key ~/.ssh/id_ed25519 --comment \"drift on segment B\""
    )]
    Reject(ApproveArgs),
    /// Show or free the applier lease (MLflow registries).
    #[command(
        subcommand,
        after_help = "Examples:\n  modelsync lease show\n  \
        modelsync lease release --force          # asks y/N on a terminal\n  \
        modelsync lease release --force --yes    # CI: no prompt"
    )]
    Lease(LeaseCommand),
    /// Move one stage or alias of a model back to an earlier version (by
    /// default the one that held it before) and hold it there.
    #[command(after_help = "Examples:\n  \
        modelsync rollback fraud-detector --alias champion --reason \"p99 doubled\"\n  \
        modelsync rollback fraud-detector --stage Production --to 6 --reason \"bad release\" --yes\n\n\
        Takes the applier lease. Allowed during a freeze; replacing someone else's hold needs\n\
        --break-glass. The hold ends when the manifests declare the held version, or with\n\
        `modelsync hold release`. Exit 5: someone else's hold stopped it.")]
    Rollback(RollbackArgs),
    /// List holds, or release one so that apply and the daemon move the
    /// target again.
    #[command(
        subcommand,
        after_help = "Examples:\n  modelsync hold list --format json\n  \
        modelsync hold release fraud-detector --alias champion   # asks y/N on a terminal"
    )]
    Hold(HoldCommand),
    /// Stop every move by every applier and daemon replica until
    /// `modelsync unfreeze` (the freeze lives in the registry).
    #[command(
        after_help = "Example:\n  modelsync freeze --reason \"incident 4711\"\n\n\
        Rollbacks still run; `apply --break-glass --reason TEXT` lets one apply through."
    )]
    Freeze(FreezeArgs),
    /// Lift the freeze.
    #[command(after_help = "Example:\n  modelsync unfreeze")]
    Unfreeze,
    /// Print the JSON Schema of manifest documents.
    #[command(after_help = "Example:\n  modelsync schema > schemas/modelsync.schema.json")]
    Schema,
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Examples:\n  \
        modelsync completions bash > ~/.local/share/bash-completion/completions/modelsync\n  \
        modelsync completions zsh > ~/.zfunc/_modelsync      # with fpath+=(~/.zfunc) in ~/.zshrc\n  \
        modelsync completions fish > ~/.config/fish/completions/modelsync.fish")]
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write one page per command to a folder.
    #[command(after_help = "Examples:\n  modelsync man | man -l -\n  \
        modelsync man --out-dir ~/.local/share/man/man1   # modelsync.1, modelsync-plan.1, ...")]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write modelsync.1 and modelsync-COMMAND.1 for every command here
    /// instead of printing modelsync.1.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Markdown,
}

/// Protected targets.
#[derive(Debug, Clone, Args)]
pub struct ProtectArgs {
    /// Stages and aliases whose moves must declare gates (comma-separated;
    /// added to `protect` in a modelsync.toml beside the manifests).
    #[arg(long, value_delimiter = ',', value_name = "TARGETS")]
    pub protect: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Manifest files or folders (searched recursively for *.yaml, *.yml).
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub protect: ProtectArgs,
    /// Output format of the diagnostics.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

/// Options shared by plan and apply.
#[derive(Debug, Args)]
pub struct PlanOptions {
    /// Also remove aliases and stage holders that modelsync set earlier and
    /// the manifests no longer declare (never anything it does not own).
    #[arg(long)]
    pub prune: bool,
    /// The manifests' revision (git commit), recorded in audit tags.
    /// Defaults to MODELSYNC_REVISION, GITHUB_SHA or CI_COMMIT_SHA.
    #[arg(long)]
    pub revision: Option<String>,
    #[command(flatten)]
    pub protect: ProtectArgs,
    #[command(flatten)]
    pub targets: TargetArgs,
}

/// A targeted plan or apply.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Only this model or prompt: a declared name, or a glob (`*`, `?`)
    /// over the declared names; repeatable. Every manifest is still
    /// validated; a pattern that matches none is an error. (apply --plan:
    /// must select exactly the saved plan's targets.)
    #[arg(long = "model", value_name = "NAME")]
    pub models: Vec<String>,
    /// Only the models, prompts and experiments whose manifest documents,
    /// templateFiles or approval files changed between this git revision
    /// and the working tree (every one when a modelsync.toml beside the
    /// manifests changed); with --model, those that also match.
    #[arg(long, value_name = "REF")]
    pub changed_since: Option<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Manifest files or folders (default: manifests/ if present, else .).
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Save the plan (with the values it observed) for `apply --plan`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 for no changes, 2 for changes, 1 for errors.
    #[arg(long)]
    pub detailed_exitcode: bool,
    #[command(flatten)]
    pub options: PlanOptions,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Manifest files or folders (default: manifests/ if present, else .).
    #[arg(conflicts_with = "plan")]
    pub paths: Vec<PathBuf>,
    /// Apply a plan saved by `plan --out`; refused (exit 4) if the registry
    /// changed since.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Models applied at once.
    #[arg(long, env = "MODELSYNC_CONCURRENCY", default_value_t = 8)]
    pub concurrency: usize,
    /// Record the verifications the moves start (`verify:`) as `verifying`
    /// and return, instead of waiting for them (and exiting 6 when one
    /// fails).
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub options: PlanOptions,
    /// Let this apply through promotion windows and a freeze; each such
    /// move's audit stamp records it, with who and --reason.
    #[arg(long, requires = "reason")]
    pub break_glass: bool,
    /// Why the glass is broken (with --break-glass).
    #[arg(long, value_name = "TEXT", requires = "break_glass")]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Manifests whose models (and gate runs) to snapshot; with none, every
    /// model, or those named by --model.
    pub paths: Vec<PathBuf>,
    /// Only these models.
    #[arg(long = "model", value_name = "NAME")]
    pub models: Vec<String>,
    /// Write an embedded-registry file instead of manifests.
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The registered model.
    pub model: String,
    /// The highest version in this stage.
    #[arg(long, group = "select")]
    pub stage: Option<String>,
    /// The version behind this alias.
    #[arg(long, group = "select")]
    pub alias: Option<String>,
    /// This version number.
    #[arg(long, group = "select")]
    pub version: Option<u64>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// The registered model, as MODEL@ALIAS to take the version behind
    /// an alias.
    #[arg(value_name = "MODEL[@ALIAS]")]
    pub target: String,
    /// The highest version in this stage.
    #[arg(long, group = "select")]
    pub stage: Option<String>,
    /// This version number.
    #[arg(long, group = "select")]
    pub version: Option<u64>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The registered model.
    pub model: String,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Manifest folders or files to watch (default: manifests/ if present, else .).
    #[arg(conflicts_with = "git")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub protect: ProtectArgs,
    /// Watch a git repository instead (https://, ssh://, file://).
    #[arg(long, value_name = "URL")]
    pub git: Option<String>,
    /// The branch to follow.
    #[arg(long, default_value = "main", value_name = "BRANCH")]
    pub branch: String,
    /// The folder of manifests inside the repository.
    #[arg(long, default_value = ".", value_name = "PATH")]
    pub path: String,
    /// How often to fetch the branch.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub interval: std::time::Duration,
    /// Where the bare clone is kept (default: $XDG_CACHE_HOME or ~/.cache,
    /// then modelsync/git/<name>-<hash of URL>).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Full reconcile period, to find drift made by hand (0 disables).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub resync: std::time::Duration,
    /// heal repairs drift; warn only reports it (log, metric, /status).
    #[arg(long, value_enum, default_value_t = crate::watch::DriftMode::Heal)]
    pub drift: crate::watch::DriftMode,
    /// Address of the HTTP endpoints.
    #[arg(long, default_value = "127.0.0.1:9464", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Require webhooks to be signed (X-Hub-Signature-256) with the secret
    /// in this environment variable.
    #[arg(long, value_name = "NAME")]
    pub webhook_secret_env: Option<String>,
    /// Accept MLflow's own webhooks on POST /hooks/mlflow, verified with the
    /// secret in this environment variable (X-MLflow-Signature); each
    /// delivery reconciles just the model it names.
    #[arg(long, value_name = "NAME")]
    pub mlflow_webhook_secret_env: Option<String>,
    /// Create or update the daemon's webhook on the MLflow server,
    /// delivering to URL (this daemon's /hooks/mlflow), with that secret.
    #[arg(long, value_name = "URL", requires = "mlflow_webhook_secret_env")]
    pub register_mlflow_webhook: Option<String>,
    /// The name the daemon's MLflow webhook is found by.
    #[arg(long, default_value = "modelsync-watch", value_name = "NAME")]
    pub mlflow_webhook_name: String,
    /// Reconcile once and exit with apply's exit codes.
    #[arg(long)]
    pub once: bool,
    /// Also remove aliases and stage holders that modelsync set earlier and
    /// the manifests no longer declare (never anything it does not own).
    #[arg(long)]
    pub prune: bool,
    /// Models applied at once.
    #[arg(long, env = "MODELSYNC_CONCURRENCY", default_value_t = 8)]
    pub concurrency: usize,
    /// Quiet time after a file change before reconciling.
    #[arg(long, default_value = "300ms", value_parser = humantime::parse_duration)]
    pub debounce: std::time::Duration,
    /// Run as one of several replicas that elect a leader; only the leader
    /// reconciles: etcd://HOST:PORT[,HOST:PORT...] or
    /// postgresql://USER[:PASSWORD]@HOST:PORT/DB (the password may come
    /// from PGPASSWORD instead).
    #[arg(long, value_name = "URI", conflicts_with = "once")]
    pub leader_election: Option<String>,
    /// Replicas with the same name compete for one leadership.
    #[arg(long, default_value = "modelsync", value_name = "NAME")]
    pub leader_election_name: String,
    /// How long a leader that stopped renewing keeps the leadership; a
    /// standby takes over within it (`--lease-ttl` is the old name).
    #[arg(
        long,
        alias = "lease-ttl",
        default_value = "15s",
        value_parser = humantime::parse_duration
    )]
    pub election_ttl: std::time::Duration,
    /// POST a CloudEvents 1.0 JSON event for every reconcile that applied
    /// something, was blocked, failed or found drift; slack+https://… posts
    /// Slack's message format instead (repeatable).
    #[arg(long = "notify", value_name = "URL")]
    pub notify: Vec<String>,
    /// Set a GitHub commit status (success, failure, pending while blocked)
    /// on each revision, with GITHUB_TOKEN; the repository comes from --git
    /// (API base: GITHUB_API_URL).
    #[arg(long, requires = "git")]
    pub github_status: bool,
    /// Apply a commit only if its SSH signature verifies against a key in
    /// --allowed-signers.
    #[arg(long, requires_all = ["git", "allowed_signers"])]
    pub verify_signatures: bool,
    /// git's allowed_signers file (principals, then an SSH public key).
    #[arg(long, value_name = "FILE", requires = "verify_signatures")]
    pub allowed_signers: Option<PathBuf>,
    /// With --verify-signatures: also apply a verified head that does not
    /// descend from the last verified commit applied (a force-push back to
    /// an older signed commit, or to another branch's).
    #[arg(long, requires = "verify_signatures")]
    pub allow_non_fast_forward: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["stage", "alias"])))]
pub struct ApproveArgs {
    /// The registered model.
    pub model: String,
    /// The stage the version may move into (Staging, Production, …).
    #[arg(long, value_name = "STAGE")]
    pub stage: Option<String>,
    /// The alias the version may move to.
    #[arg(long, value_name = "ALIAS")]
    pub alias: Option<String>,
    /// The version (default: the model's latest version).
    #[arg(long, value_name = "N")]
    pub version: Option<u64>,
    /// The SSH private key to sign with (OpenSSH format, unencrypted; for a
    /// passphrase or an agent, sign --print-statement's output with
    /// ssh-keygen -Y sign).
    #[arg(long, value_name = "PATH", required_unless_present = "print_statement")]
    pub key: Option<PathBuf>,
    /// The principal to sign as (default: the one the approvers file lists
    /// for the key, found through the modelsync.toml of --out DIR, else of
    /// manifests/ or .).
    #[arg(long, value_name = "NAME")]
    pub principal: Option<String>,
    /// A comment, part of the signed statement (one line).
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
    /// How long the statement counts from now.
    #[arg(long, default_value = "30d", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub expires: std::time::Duration,
    /// Write the record to DIR/approvals/ (the manifests' folder, for a
    /// commit) instead of a tag on the version: the way to approve a model
    /// you may only read.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print the canonical statement to sign, and nothing else: no key,
    /// nothing stored (needs --principal).
    #[arg(long, conflicts_with_all = ["key", "out"], requires = "principal")]
    pub print_statement: bool,
}

#[derive(Debug, Subcommand)]
pub enum LeaseCommand {
    /// Print who holds the applier lease (holder, host, pid, started, expiry).
    Show(LeaseShowArgs),
    /// Free a stale applier lease left by a crashed apply, whoever holds it.
    Release(LeaseReleaseArgs),
}

#[derive(Debug, Args)]
pub struct LeaseShowArgs {
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct LeaseReleaseArgs {
    /// Required: release even though another modelsync may hold the lease.
    /// Only when no apply is running.
    #[arg(long, required = true)]
    pub force: bool,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
}

/// One stage or alias of a model.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct TargetSelect {
    /// The stage (Staging or Production).
    #[arg(long, value_name = "STAGE")]
    pub stage: Option<String>,
    /// The alias.
    #[arg(long, value_name = "ALIAS")]
    pub alias: Option<String>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The registered model.
    pub model: String,
    #[command(flatten)]
    pub target: TargetSelect,
    /// The version to go back to (default: the previous holder, from the
    /// audit trail). Must exist and be READY.
    #[arg(long, value_name = "VERSION")]
    pub to: Option<u64>,
    /// Why (recorded in the hold and the audit stamp).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Replace a hold someone else placed on the target, or pass a
    /// promotion window that stops moves now (recorded in the audit stamp).
    #[arg(long)]
    pub break_glass: bool,
    /// Where the promotion windows are read: the modelsync.toml beside
    /// these manifests (default: manifests/ if it exists, else .).
    #[arg(long = "manifests", value_name = "PATH")]
    pub manifests: Vec<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum HoldCommand {
    /// Print every hold on every registered model (one bulk read).
    List(HoldListArgs),
    /// Release the hold on one stage or alias.
    Release(HoldReleaseArgs),
}

#[derive(Debug, Args)]
pub struct HoldListArgs {
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct HoldReleaseArgs {
    /// The registered model.
    pub model: String,
    #[command(flatten)]
    pub target: TargetSelect,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct FreezeArgs {
    /// Why (shown in every blocked plan, the status page and `hold list`).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    #[test]
    fn the_daemon_listens_on_loopback_by_default() {
        let cli = Cli::try_parse_from(["modelsync", "watch", "manifests"]).expect("parse");
        let Command::Watch(args) = cli.command else {
            panic!("not watch");
        };
        assert!(args.listen.ip().is_loopback(), "{}", args.listen);
    }
}
