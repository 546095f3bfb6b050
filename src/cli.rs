//! The command line: `serve` (default), `check`, `demo`, `send-test`, `deadletter …`,
//! `deliveries`, `webhooks [list|resume NAME]`, `learn`, `tail`. It parses arguments and
//! reports outcomes with exit codes; the work is never done here but in the modules it calls.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::event::Action;
use crate::events::deadletter::{SpoolCommand, WindowArgs};
use crate::events::live::Outcome;
use crate::events::records::UnknownStatus;
use crate::events::webhooks_command::WebhooksCommand;
use crate::events::DeliveryStatus;
use crate::snapshot::Snapshot;

/// userhook: user lifecycle webhooks for an unmodified IAM, as a reverse-proxy sidecar.
#[derive(Debug, Parser)]
#[command(name = "userhook", version, about)]
pub struct Cli {
    /// Config file (also for `serve` when no subcommand is given).
    #[arg(
        long,
        short,
        global = true,
        env = "USERHOOK_CONFIG",
        default_value = "config/userhook.yaml"
    )]
    pub config: PathBuf,
    /// Proxy worker threads (default: one per available core). Each runs its own listener
    /// and upstream pool; detection and delivery run beside them.
    #[arg(long, global = true, env = "USERHOOK_WORKERS")]
    pub workers: Option<usize>,
    /// What to do; `serve` when none is given.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy (the default).
    Serve,
    /// See it work: a sample IAM, userhook in front of it and a console webhook receiver.
    Demo,
    /// Validate a config file and print a summary; exits non-zero listing every problem.
    Check {
        /// The file to check (default: --config).
        file: Option<PathBuf>,
    },
    /// Send a sample event (user 42, alice) to one webhook once and print request and reply.
    /// Exits 0 when the webhook's success check passes, 1 when not, 2 on a config problem.
    SendTest {
        /// The webhook's `name` in the config.
        #[arg(long)]
        webhook: String,
        /// The sample event's action.
        #[arg(long, default_value = "created", value_parser = parse_action)]
        action: Action,
    },
    /// Dead letters in the spool: list, show, replay, purge. Asks the running instance's admin
    /// API, or opens the spool file of a stopped one.
    Deadletter {
        /// Which dead-letter operation.
        #[command(subcommand)]
        action: DeadletterAction,
    },
    /// Print the JSON Schema of what userhook sends: `event` (the event JSON), `cloudevent`
    /// (a `preset: cloudevents` body), `variables` (what templates can name), or all three.
    Schema {
        /// event, cloudevent or variables; all three (keyed by name) when left out.
        which: Option<String>,
    },
    /// Webhooks' health and pace (active or paused, why, pending, rate) from the running
    /// instance's admin API; `resume NAME` resumes a paused one now.
    Webhooks {
        /// `list` (the default) or `resume NAME`.
        #[command(subcommand)]
        action: Option<WebhooksAction>,
    },
    /// The last delivery outcomes, newest first (running or stopped instance); `resend` sends
    /// kept successful deliveries again.
    Deliveries {
        /// Only this status: successful, failed or retrying.
        #[arg(long, value_parser = parse_status)]
        status: Option<DeliveryStatus>,
        /// `resend`: send kept successful deliveries again.
        #[command(subcommand)]
        action: Option<DeliveriesAction>,
    },
    /// Follow a running instance's detected events and delivery outcomes live (admin API
    /// `GET /events`), one line each; reconnects and resumes by itself; Ctrl-C ends it.
    /// The token is the config's admin.token, or USERHOOK_ADMIN_TOKEN when set.
    Tail {
        /// Only these actions (repeat or comma-separate: created,deleted).
        #[arg(long, value_parser = parse_action, value_delimiter = ',')]
        action: Vec<Action>,
        /// Only events about this user: its ID, Email or Name (repeatable).
        #[arg(long, value_delimiter = ',')]
        user: Vec<String>,
        /// Only deliveries to this webhook or sink, and events dispatched to it (repeatable).
        #[arg(long, value_delimiter = ',')]
        webhook: Vec<String>,
        /// Only delivery outcomes: delivered, retrying, dead, filtered, paused, refused.
        #[arg(long, value_parser = parse_outcome, value_delimiter = ',')]
        outcome: Vec<Outcome>,
        /// Start with the last N items the instance still keeps (`all`: everything kept).
        #[arg(long, value_name = "N", value_parser = parse_replay)]
        replay: Option<usize>,
        /// Print the feed's JSON, one object a line, instead of text.
        #[arg(long)]
        json: bool,
        /// The admin API's base URL (default: admin.listen of --config).
        #[arg(long, value_name = "URL")]
        admin: Option<String>,
    },
    /// Proxy an IAM and learn its API from the traffic: on SIGINT/SIGTERM, write a proposed
    /// config (path templates, lifecycle rules, fields, sessions) to --out. Nothing changes
    /// for clients; nothing is delivered; only shapes are kept, never values.
    Learn {
        /// The IAM's base URL (`http://127.0.0.1:8081`).
        #[arg(long)]
        upstream: String,
        /// Where clients connect.
        #[arg(long, default_value = "0.0.0.0:8080")]
        listen: String,
        /// The admin port (`GET /learn` shows the proposal so far).
        #[arg(long, default_value = "127.0.0.1:9090")]
        admin: String,
        /// The file the proposed config is written to.
        #[arg(long)]
        out: PathBuf,
    },
}

/// What to do with past deliveries.
#[derive(Debug, Subcommand)]
pub enum DeliveriesAction {
    /// Send the successful deliveries kept under `delivery.retain_delivered` again, with their
    /// `webhook-id`, by webhook and time window (all kept ones without bounds).
    Resend {
        /// Only this webhook's deliveries.
        #[arg(long)]
        webhook: Option<String>,
        /// Events from this time on: RFC 3339 (2026-12-01T00:00:00Z) or a span back (24h).
        #[arg(long)]
        since: Option<String>,
        /// Events before this time: RFC 3339 or a span back from now.
        #[arg(long)]
        until: Option<String>,
    },
}

/// What to do with dead letters.
#[derive(Debug, Subcommand)]
pub enum DeadletterAction {
    /// Dead letters, newest first.
    List,
    /// One dead letter in full (its event included).
    Show {
        /// The delivery id (`webhook-id`).
        id: String,
    },
    /// Put dead letters back into pending: attempts reset, same delivery id. One by id, all,
    /// or those of a webhook and/or time window.
    Replay {
        /// The delivery id to replay.
        #[arg(
            required_unless_present_any = ["all", "webhook", "since", "until"],
            conflicts_with_all = ["all", "webhook", "since", "until"]
        )]
        id: Option<String>,
        /// Replay every dead letter.
        #[arg(long, conflicts_with_all = ["webhook", "since", "until"])]
        all: bool,
        /// Only this webhook's dead letters.
        #[arg(long)]
        webhook: Option<String>,
        /// Events from this time on: RFC 3339 (2026-12-01T00:00:00Z) or a span back (24h).
        #[arg(long)]
        since: Option<String>,
        /// Events before this time: RFC 3339 or a span back from now.
        #[arg(long)]
        until: Option<String>,
    },
    /// Drop every dead letter.
    Purge,
}

/// What to do with webhooks.
#[derive(Debug, Subcommand)]
pub enum WebhooksAction {
    /// Every webhook's state (the default).
    List,
    /// Resume a paused webhook now: its pending deliveries go out at once.
    Resume {
        /// The webhook's `name` in the config.
        name: String,
    },
}

fn parse_status(s: &str) -> Result<DeliveryStatus, UnknownStatus> {
    s.parse()
}

fn parse_action(s: &str) -> Result<Action, String> {
    s.parse()
}

fn parse_outcome(s: &str) -> Result<Outcome, String> {
    s.parse()
}

fn parse_replay(s: &str) -> Result<usize, String> {
    match s {
        "all" => Ok(crate::events::live::RING_ITEMS),
        n => n
            .parse()
            .map_err(|_| format!("`{s}` is not a number or `all`")),
    }
}

/// Runs the parsed command line; the exit code is what the process returns.
pub fn run(cli: Cli) -> ExitCode {
    // One TLS provider for every HTTPS client the process builds (webhooks, JWKS, the admin
    // API clients of `deadletter`, `tail` and the rest): rustls refuses to pick one itself.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config, cli.workers),
        Command::Check { file } => check(file.unwrap_or(cli.config)),
        Command::Demo => demo(),
        Command::Schema { which } => schema(which.as_deref()),
        Command::SendTest { webhook, action } => send_test(cli.config, &webhook, action),
        Command::Deadletter { action } => spool_command(
            &cli.config,
            match action {
                DeadletterAction::List => SpoolCommand::List,
                DeadletterAction::Show { id } => SpoolCommand::Show(id),
                DeadletterAction::Replay {
                    id,
                    webhook,
                    since,
                    until,
                    ..
                } => SpoolCommand::Replay(
                    id,
                    WindowArgs {
                        webhook,
                        since,
                        until,
                    },
                ),
                DeadletterAction::Purge => SpoolCommand::Purge,
            },
        ),
        Command::Deliveries {
            action:
                Some(DeliveriesAction::Resend {
                    webhook,
                    since,
                    until,
                }),
            ..
        } => spool_command(
            &cli.config,
            SpoolCommand::Resend(WindowArgs {
                webhook,
                since,
                until,
            }),
        ),
        Command::Deliveries {
            status,
            action: None,
        } => spool_command(&cli.config, SpoolCommand::Deliveries(status)),
        Command::Webhooks { action } => webhooks_command(
            &cli.config,
            match action.unwrap_or(WebhooksAction::List) {
                WebhooksAction::List => WebhooksCommand::List,
                WebhooksAction::Resume { name } => WebhooksCommand::Resume(name),
            },
        ),
        Command::Tail {
            action,
            user,
            webhook,
            outcome,
            replay,
            json,
            admin,
        } => tail(crate::tail::Options {
            config: cli.config,
            admin,
            token: std::env::var("USERHOOK_ADMIN_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
            actions: action,
            users: user,
            webhooks: webhook,
            outcomes: outcome,
            replay,
            json,
        }),
        Command::Learn {
            upstream,
            listen,
            admin,
            out,
        } => learn(&upstream, &listen, &admin, out, cli.workers),
    }
}

/// Runs a `webhooks` command; exit 1 when it failed, with the reason on stderr.
fn webhooks_command(config: &std::path::Path, command: WebhooksCommand) -> ExitCode {
    let Some(runtime) = async_runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(crate::events::webhooks_command::run(config, &command)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", e.0);
            ExitCode::FAILURE
        }
    }
}

/// Follows the live feed until Ctrl-C (exit 0); 1 when the instance refused, 2 on a config
/// problem.
fn tail(options: crate::tail::Options) -> ExitCode {
    let Some(runtime) = async_runtime() else {
        return ExitCode::FAILURE;
    };
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    match runtime.block_on(crate::tail::run(&options, &mut out, &mut err)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ crate::tail::TailError::Config(_)) => {
            eprintln!("userhook tail: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("userhook tail: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The config `userhook learn` runs with: the proxy, the admin port and `learn:`, nothing
/// else (no profiles, no webhooks). Values are JSON strings, which YAML reads as they are.
fn learn_config(upstream: &str, listen: &str, admin: &str, out: &std::path::Path) -> String {
    let q = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    format!(
        "listen: {}\nupstream: {}\nadmin:\n  listen: {}\nlearn:\n  out: {}\n",
        q(listen),
        q(upstream),
        q(admin),
        q(&out.display().to_string())
    )
}

fn learn(
    upstream: &str,
    listen: &str,
    admin: &str,
    out: PathBuf,
    workers: Option<usize>,
) -> ExitCode {
    let out = std::path::absolute(&out).unwrap_or(out);
    let text = learn_config(upstream, listen, admin, &out);
    let initial = match Snapshot::from_text(&text, None) {
        Ok(rt) => rt,
        Err(errors) => {
            eprint!("userhook learn: {errors}");
            return ExitCode::from(2);
        }
    };
    let workers = workers
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let Some(runtime) = async_runtime() else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(async move {
        crate::telemetry::init(&initial.file.log);
        let options = crate::app::Options {
            config_path: out,
            watch: false,
        };
        match crate::app::learn(options, initial, workers).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Runs a dead-letter or deliveries command; exit 1 when it failed, with the reason on stderr.
fn spool_command(config: &std::path::Path, command: SpoolCommand) -> ExitCode {
    let Some(runtime) = async_runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(crate::events::deadletter::run(config, &command)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", e.0);
            ExitCode::FAILURE
        }
    }
}

/// `userhook schema [event|cloudevent|variables]`; exit 2 for an unknown name.
fn schema(which: Option<&str>) -> ExitCode {
    match crate::template::schema::named(which) {
        Some(v) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())
            );
            ExitCode::SUCCESS
        }
        None => {
            eprintln!(
                "unknown schema `{}`; expected one of {}",
                which.unwrap_or_default(),
                crate::template::schema::SCHEMAS.join(", ")
            );
            ExitCode::from(2)
        }
    }
}

fn check(path: PathBuf) -> ExitCode {
    match Snapshot::load(&path, None) {
        Ok(rt) => {
            println!("{} is valid.", path.display());
            println!("{}", crate::config::summary::summary(&rt.file));
            // Public keys only: what receivers verify `v1a` signatures with.
            for w in rt.webhooks.iter() {
                for key in w.signer.iter().flat_map(|s| s.public_keys()) {
                    println!("  {}: v1a public key {key}", w.name);
                }
            }
            if !rt.warnings.is_empty() {
                let n = rt.warnings.len();
                println!("{n} warning{}:", if n == 1 { "" } else { "s" });
                for w in &rt.warnings {
                    println!("  - {w}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprint!("{}: {errors}", path.display());
            ExitCode::from(2)
        }
    }
}

fn send_test(path: PathBuf, webhook: &str, action: Action) -> ExitCode {
    let rt = match Snapshot::load(&path, None) {
        Ok(rt) => rt,
        Err(errors) => {
            eprint!("{}: {errors}", path.display());
            return ExitCode::from(2);
        }
    };
    let Some(runtime) = async_runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(crate::events::send_test::send_test(&rt, webhook, action)) {
        Ok(report) => {
            print!("{}", report.text);
            if report.delivered {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            ExitCode::from(2)
        }
    }
}

fn serve(path: PathBuf, workers: Option<usize>) -> ExitCode {
    let workers = workers
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // This thread is the first proxy worker and also carries detection, delivery, reloads
    // and the admin API; workers 2..N get threads of their own.
    let Some(runtime) = async_runtime() else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(async move {
        let initial = match Snapshot::load(&path, None) {
            Ok(rt) => rt,
            Err(errors) => {
                eprint!("{}: {errors}", path.display());
                return ExitCode::from(2);
            }
        };
        crate::telemetry::init(&initial.file.log);
        for w in &initial.warnings {
            tracing::warn!("config warning: {w}");
        }
        let options = crate::app::Options {
            config_path: path,
            watch: true,
        };
        match crate::app::serve(options, initial, workers).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn demo() -> ExitCode {
    let Some(runtime) = async_runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(crate::demo::run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// The single-threaded runtime every command runs on (`serve` adds worker threads of its own;
/// the thread it is built on is proxy worker 1). `None` after saying why on stderr.
fn async_runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .thread_name("userhook")
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            None
        }
    }
}
