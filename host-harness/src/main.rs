//! `theta-host`: run Theta EdgeCloud commands in the sandboxed plugin.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use theta_host::events::{EventCallback, GuestEvent};
use theta_host::{HostConfig, Runtime, config, report};

#[derive(Parser)]
#[command(
    name = "theta-host",
    version,
    about = "Run Theta EdgeCloud commands in a sandboxed WebAssembly plugin"
)]
struct Cli {
    /// The plugin component (default: $THETA_PLUGIN_WASM, else the workspace build).
    #[arg(long, global = true, env = "THETA_PLUGIN_WASM")]
    plugin: Option<PathBuf>,
    /// Host configuration file merged under the environment.
    #[arg(long, global = true, default_value = ".env.local")]
    env_file: PathBuf,
    /// Refuse every request that mutates or spends; reads still work.
    #[arg(long, global = true)]
    dry_run: bool,
    /// Append the audit trail (JSON lines) to this file.
    #[arg(long, global = true)]
    audit_log: Option<PathBuf>,
    /// TESTS AND DEMOS ONLY: send approved requests over plain HTTP to this loopback IP:PORT.
    #[arg(long, global = true, env = "THETA_TEST_UPSTREAM")]
    test_upstream: Option<String>,
    /// Tenant policy file (TOML; see docs/tenants.example.toml). Calls run as `--tenant`.
    #[arg(long, global = true, env = "THETA_TENANTS_FILE")]
    tenants: Option<PathBuf>,
    /// The tenant to run as (with --tenants).
    #[arg(long, global = true, env = "THETA_TENANT", default_value = "default")]
    tenant: String,
    /// Log level for the host's own diagnostics (error, warn, info, debug).
    #[arg(long, global = true, default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every command with its effect (read / mutate / spend).
    Commands {
        /// Print JSON with each command's argument schema.
        #[arg(long)]
        json: bool,
    },
    /// Run one command.
    Call {
        /// Command name, e.g. `list_services` or `theta.ondemand.chat`.
        name: String,
        /// Arguments as a JSON object.
        #[arg(long, conflicts_with = "args_file")]
        args: Option<String>,
        /// Read the arguments from a JSON file.
        #[arg(long)]
        args_file: Option<PathBuf>,
        /// Print nothing on stderr while the call runs (no streamed tokens or progress).
        #[arg(long)]
        quiet: bool,
    },
    /// Serve every command as an MCP tool over stdio (Model Context Protocol), under the same policy.
    Mcp {
        /// Tool names: only [A-Za-z0-9_-] (safe, what model APIs accept), or the command names (exact).
        #[arg(long, value_enum, default_value_t = theta_host::mcp::ToolNames::Safe)]
        tool_names: theta_host::mcp::ToolNames,
        /// Which commands are tools: all, official (the official on-demand server's four), or families
        /// (ondemand, deployments, inference, agents, video, billing, auth), comma-separated.
        #[arg(long, default_value = "all", value_parser = |s: &str| s.parse::<theta_host::mcp::ToolSet>())]
        tools: theta_host::mcp::ToolSet,
        /// Also send the plugin's JSON as `structuredContent` for the official four tools (text only
        /// otherwise, as the official server answers).
        #[arg(long)]
        structured_content: bool,
    },
    /// Serve the MCP tools over streamable HTTP to many tenants, each signed in with its own bearer
    /// token (its `token_sha256` in --tenants), until SIGTERM/SIGINT.
    Serve {
        /// Address to listen on. Loopback by default; anything else should be behind TLS (--tls-cert
        /// and --tls-key, or a reverse proxy that terminates it).
        #[arg(long, default_value = "127.0.0.1:8787")]
        listen: std::net::SocketAddr,
        /// Also allow browser requests from this origin (scheme://host[:port], port `*` for any);
        /// loopback origins are always allowed. Repeatable.
        #[arg(long = "allow-origin")]
        allow_origins: Vec<String>,
        /// Also accept this `Host` header (host or host:port; the name clients use behind a proxy);
        /// loopback names and the listen address are always accepted. Repeatable.
        #[arg(long = "allow-host")]
        allow_hosts: Vec<String>,
        /// TLS certificate chain (PEM), with --tls-key.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// TLS private key (PEM), with --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Seconds running calls may go on after SIGTERM/SIGINT before they are cancelled.
        #[arg(long, default_value_t = 10)]
        shutdown_grace_secs: u64,
        /// As for `mcp`.
        #[arg(long, value_enum, default_value_t = theta_host::mcp::ToolNames::Safe)]
        tool_names: theta_host::mcp::ToolNames,
        /// As for `mcp`.
        #[arg(long, default_value = "all", value_parser = |s: &str| s.parse::<theta_host::mcp::ToolSet>())]
        tools: theta_host::mcp::ToolSet,
        /// As for `mcp`.
        #[arg(long)]
        structured_content: bool,
    },
    /// Bearer tokens for `serve`.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// One cheap call per on-demand service under a budget cap, then a table (see host-harness/src/smoke.rs).
    /// Runs against --test-upstream, or against the real cloud only with --live.
    Smoke {
        /// Services to call, e.g. qwen3,flux,blip (default: SERVICES, else qwen3,flux).
        #[arg(long, value_delimiter = ',')]
        services: Vec<String>,
        /// Stop before the estimated total would pass this many US dollars (default:
        /// THETA_MAX_BUDGET_USD, else 2.00).
        #[arg(long)]
        max_budget_usd: Option<f64>,
        /// Spend real money on the real Theta EdgeCloud (needs the on-demand token).
        #[arg(long)]
        live: bool,
        #[arg(long)]
        json: bool,
    },
    /// Compile the plugin for this machine into the on-disk cache, so the first real call starts fast.
    Precompile,
    /// Per tenant: spent (settled), reserved (open), cap, and live deployment leases, from the spend
    /// store (the tenants file's `store`, else THETA_STORE_URL, else the user's default store).
    Spend {
        #[arg(long)]
        json: bool,
        /// Release an open reservation left by a host that died (operators only; by id).
        #[arg(long)]
        release: Option<i64>,
    },
    /// One janitor pass: delete deployments whose lease expired, and disposable deployments whose
    /// call is gone (cron-friendly; `mcp` runs one at start and every minute).
    Janitor {
        #[arg(long)]
        json: bool,
    },
    /// Ask for each family's keys (secrets hidden), check each with a free read, and write the env
    /// file (--env-file, default .env.local) with mode 0600; values not replaced are kept.
    Setup {
        /// Take the values from the environment instead of asking.
        #[arg(long)]
        non_interactive: bool,
    },
    /// Which credentials the host has, per family (never their values).
    Auth {
        #[arg(long)]
        json: bool,
    },
    /// Demo session against the embedded FAKE EdgeCloud on loopback (no keys, no network, no cost).
    #[cfg(feature = "demo")]
    Demo,
}

#[derive(Subcommand)]
enum TokenAction {
    /// Read a token from stdin and print the `token_sha256 = "..."` line for its tenant's section.
    Hash,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    if let Command::Setup { non_interactive } = &cli.command {
        // Setup reads the env file itself: the values being replaced must not configure this host.
        let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
        let upstream = match &cli.test_upstream {
            Some(addr) => theta_host::net::Upstream::TestServer(config::parse_test_upstream(addr)?),
            None => theta_host::net::Upstream::default(),
        };
        let wasm = plugin_path(cli.plugin.as_deref())?;
        let checks =
            theta_host::setup::run(&cli.env_file, !non_interactive, &env, upstream, &wasm).await?;
        print!("{}", theta_host::setup::table(&checks, &cli.env_file));
        let failed = checks
            .iter()
            .any(|(_, c)| matches!(c, theta_host::setup::Check::Refused(_)));
        return Ok(if failed { 2 } else { 0 });
    }
    let mut cfg = HostConfig::from_env(Some(&cli.env_file))?;
    if cli.dry_run {
        cfg.policy.dry_run = true;
    }
    if let Some(path) = &cli.audit_log {
        cfg.audit_log = Some(path.clone());
    }
    if let Some(addr) = &cli.test_upstream {
        cfg.upstream = theta_host::net::Upstream::TestServer(config::parse_test_upstream(addr)?);
    }
    cfg.tenant = cli.tenant.clone();
    let tenants = cli.tenants.clone();
    let open = |cfg: HostConfig, plugin: Option<PathBuf>| async move {
        let wasm = plugin_path(plugin.as_deref())?;
        match tenants {
            Some(file) => {
                let policy = theta_host::tenant::file::load(&file)?;
                if !policy.tenants.contains_key(&cfg.tenant) {
                    bail!(
                        "tenant `{}` is not in {} (it has: {})",
                        cfg.tenant,
                        file.display(),
                        policy
                            .tenants
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                Runtime::with_tenants(cfg, &wasm, policy).await
            }
            None => Runtime::new(cfg, &wasm).await,
        }
    };
    match cli.command {
        Command::Spend { json, release } => {
            let sandbox = sandbox_for(cfg, cli.tenants.as_deref())?;
            theta_host::report::spend(&sandbox, json, release).await
        }
        Command::Janitor { json } => {
            let sandbox = sandbox_for(cfg, cli.tenants.as_deref())?;
            let done = theta_host::janitor::pass(sandbox.shared()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&done)?);
            } else if done.is_empty() {
                println!("janitor: no expired lease");
            } else {
                for c in &done {
                    println!(
                        "janitor: lease {} of `{}` ({}): {} ({})",
                        c.lease,
                        c.tenant,
                        c.deployment.as_deref().unwrap_or("deployment unknown"),
                        c.outcome,
                        theta_host::text::for_terminal(&c.detail)
                    );
                }
            }
            Ok(if done.iter().any(|c| c.outcome == "failed") {
                2
            } else {
                0
            })
        }
        Command::Precompile => {
            let rt = open(cfg, cli.plugin.clone()).await?;
            print!("{}", report::load_line(rt.load_report()));
            Ok(0)
        }
        Command::Auth { json } => {
            print_auth(&cfg, json);
            Ok(0)
        }
        Command::Setup { .. } => unreachable!("handled before the host's configuration is read"),
        Command::Commands { json } => {
            let rt = open(cfg, cli.plugin.clone()).await?;
            let commands = rt.describe().await?;
            if json {
                let all: Vec<_> = commands.iter().map(report::command_json).collect();
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                print!("{}", report::commands_table(&commands));
            }
            Ok(0)
        }
        Command::Call {
            name,
            args,
            args_file,
            quiet,
        } => {
            let args = match (args, args_file) {
                (Some(a), _) => a,
                (None, Some(file)) => std::fs::read_to_string(&file)
                    .with_context(|| format!("reading --args-file {}", file.display()))?,
                (None, None) => "{}".to_owned(),
            };
            let rt = open(cfg, cli.plugin.clone()).await?;
            let events = if quiet {
                Arc::new(|_| {})
            } else {
                stderr_events()
            };
            let outcome = rt.invoke(&name, &args, events).await?;
            Ok(print_outcome(outcome))
        }
        Command::Smoke {
            services,
            max_budget_usd,
            live,
            json,
        } => {
            let test = matches!(cfg.upstream, theta_host::net::Upstream::TestServer(_));
            if !test && !live {
                bail!(
                    "smoke spends real money: pass --live to call the real Theta EdgeCloud, or --test-upstream for a fake"
                );
            }
            if !test
                && cfg
                    .credentials
                    .get(theta_host::credentials::Family::OnDemand)
                    .is_none()
            {
                bail!("smoke --live needs THETA_ONDEMAND_API_TOKEN (see `theta-host auth`)");
            }
            let knobs: std::collections::HashMap<String, String> =
                cfg.passthrough.iter().cloned().collect();
            // Host configuration first, then the process environment (the skill's SERVICES).
            let opts = theta_host::smoke::SmokeOptions::new(services, max_budget_usd, |k| {
                knobs.get(k).cloned().or_else(|| std::env::var(k).ok())
            })?;
            let rt = open(cfg, cli.plugin.clone()).await?;
            let prices = theta_host::tenant::pricing::PriceTable::default();
            let rows = theta_host::smoke::run(&rt, &opts, &prices, stderr_events()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", theta_host::smoke::table(&rows, opts.max_budget_usd));
            }
            Ok(if rows.iter().any(|r| r.outcome == "error") {
                2
            } else {
                0
            })
        }
        Command::Mcp {
            tool_names,
            tools,
            structured_content,
        } => {
            let options = theta_host::mcp::Options {
                names: tool_names,
                tools,
                structured: structured_content,
            };
            let rt = open(cfg, cli.plugin.clone()).await?;
            theta_host::janitor::run_in_background(&rt);
            theta_host::mcp::serve_stdio(rt, options).await?;
            Ok(0)
        }
        Command::Serve {
            listen,
            allow_origins,
            allow_hosts,
            tls_cert,
            tls_key,
            shutdown_grace_secs,
            tool_names,
            tools,
            structured_content,
        } => {
            let Some(file) = cli.tenants.as_deref() else {
                bail!(
                    "serve needs --tenants FILE (or THETA_TENANTS_FILE): each request's bearer token selects its tenant by the tenant's `token_sha256`"
                );
            };
            let policy = theta_host::tenant::file::load(file)?;
            let tokens = theta_host::mcp::auth::TokenTable::new(&policy.access);
            // Any tenant of the file runs `describe` (it sends nothing); every call runs as the
            // tenant of its token.
            if let Some(first) = policy.tenants.keys().next() {
                cfg.tenant = first.clone();
            }
            let rt =
                Runtime::with_tenants(cfg, &plugin_path(cli.plugin.as_deref())?, policy).await?;
            theta_host::janitor::run_in_background(&rt);
            let options = theta_host::mcp::http::ServeOptions {
                listen,
                allow_origins,
                allow_hosts,
                tls: tls_cert.zip(tls_key),
                shutdown_grace: std::time::Duration::from_secs(shutdown_grace_secs),
                tenants_file: Some(file.to_path_buf()),
                mcp: theta_host::mcp::Options {
                    names: tool_names,
                    tools,
                    structured: structured_content,
                },
            };
            theta_host::mcp::http::serve(rt, tokens, options).await?;
            Ok(0)
        }
        Command::Token {
            action: TokenAction::Hash,
        } => {
            let mut token = String::new();
            std::io::stdin()
                .read_line(&mut token)
                .context("reading the token from stdin")?;
            println!("{}", theta_host::mcp::auth::hash_line(&token)?);
            Ok(0)
        }
        #[cfg(feature = "demo")]
        Command::Demo => theta_host::demo::run(cfg, &plugin_path(cli.plugin.as_deref())?).await,
    }
}

/// Prints a call's result (stdout, JSON) or error (stderr, one line; stdout, JSON). Exit 0 or 2.
pub fn print_outcome(outcome: theta_host::CallOutput) -> u8 {
    match outcome {
        Ok(json) => {
            let pretty = serde_json::from_str::<serde_json::Value>(&json)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or(json);
            println!("{pretty}");
            0
        }
        Err(err) => {
            eprintln!(
                "error: {}",
                theta_host::text::for_terminal(&report::error_text(&err))
            );
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"error": report::error_json(&err)})
                )
                .unwrap_or_default()
            );
            2
        }
    }
}

/// Streams tokens to stderr as they arrive; progress and logs as tagged lines. Guest text is
/// neutralised: no escape sequence reaches the terminal, and only tokens may start new lines.
fn stderr_events() -> EventCallback {
    use theta_host::text::{for_terminal, neutralise};
    Arc::new(|event| {
        let mut err = std::io::stderr().lock();
        let _ = match event {
            GuestEvent::Token { text } => write!(err, "{}", neutralise(&text, true)),
            GuestEvent::Reasoning { text } => {
                write!(err, "\x1b[2m{}\x1b[0m", neutralise(&text, true))
            }
            GuestEvent::Progress { message, .. } => {
                writeln!(err, "[plugin progress] {}", for_terminal(&message))
            }
            GuestEvent::Log { level, message } => {
                let level = level
                    .as_deref()
                    .filter(|l| matches!(*l, "error" | "warn" | "info" | "debug"))
                    .unwrap_or("info");
                writeln!(err, "[plugin {level}] {}", for_terminal(&message))
            }
            GuestEvent::Stderr(line) => writeln!(err, "[plugin] {}", for_terminal(&line)),
        };
        let _ = err.flush();
    })
}

fn print_auth(cfg: &HostConfig, json: bool) {
    let rows = theta_host::credentials::status_rows(&cfg.credentials);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return;
    }
    println!("{:<20}  {:<10}  VARIABLE / DETAIL", "FAMILY", "STATUS");
    for row in rows {
        println!("{:<20}  {:<10}  {}", row.family, row.status, row.detail);
    }
    if cfg.policy.dry_run {
        println!("dry-run is ON: mutating and paid requests are refused at the host");
    }
}

/// The host without a plugin (for `spend` and `janitor`): its tenants, store, credentials, client.
fn sandbox_for(
    cfg: HostConfig,
    tenants: Option<&Path>,
) -> anyhow::Result<theta_host::sandbox::Sandbox> {
    match tenants {
        Some(file) => {
            let policy = theta_host::tenant::file::load(file)?;
            theta_host::sandbox::Sandbox::from_policy_file(cfg, policy)
        }
        None => theta_host::sandbox::Sandbox::single_tenant(cfg),
    }
}

/// Finds the plugin: the flag or env, else the workspace's release build.
fn plugin_path(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let rel = Path::new("target/wasm32-wasip2/plugin-release/theta_plugin.wasm");
    let mut candidates = vec![rel.to_path_buf()];
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(exe.ancestors().skip(1).map(|dir| dir.join(rel)));
        if let Some(dir) = exe.parent() {
            candidates.push(dir.join("theta_plugin.wasm"));
        }
    }
    match candidates.into_iter().find(|p| p.exists()) {
        Some(p) => Ok(p),
        None => bail!(
            "no plugin found: build it with `scripts/build-wasm.sh`, or pass --plugin PATH (or set THETA_PLUGIN_WASM)"
        ),
    }
}
