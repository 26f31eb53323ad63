//! The `mailwarden` command: `serve` runs the milter daemon, `check-config` validates
//! a configuration file before a reload, `scan` explains what the daemon would do
//! with one message.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use mailwarden::config::{self, LogFormat};
use mailwarden::daemon::{self, ServeOptions};
use mailwarden::explain::{self, ScanInput};
use mailwarden::milter::ListenAddr;
use mailwarden::pipeline::Pipeline;

#[derive(Parser)]
#[command(
    name = "mailwarden",
    version,
    about = "Mail-security milter for Postfix"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the milter daemon (built-in defaults without -c).
    Serve {
        /// Configuration file.
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// Listen on this address instead of server.listen (repeatable):
        /// inet:HOST:PORT or unix:PATH.
        #[arg(long = "listen", value_parser = parse_listen)]
        listen: Vec<ListenAddr>,
        /// Log format: text or json (overrides [log] format).
        #[arg(long = "log-format", value_parser = config::parse_log_format)]
        log_format: Option<LogFormat>,
    },
    /// Check a configuration file; print every error and exit non-zero if any.
    CheckConfig {
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
    },
    /// Run the whole pipeline on a message file (real DNS, no MTA) and explain the
    /// verdict: direction, every check with its reason, edits, reply.
    Scan {
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// The SMTP client's IP address.
        #[arg(long)]
        ip: std::net::IpAddr,
        /// The HELO/EHLO name the client gave.
        #[arg(long)]
        helo: String,
        /// MAIL FROM address ("" for the null sender).
        #[arg(long)]
        from: String,
        /// RCPT TO address (repeatable).
        #[arg(long, required = true)]
        rcpt: Vec<String>,
        /// Treat the client as authenticated with this SASL user name.
        #[arg(long)]
        auth: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The message (RFC 5322, LF or CRLF line ends).
        file: PathBuf,
    },
}

fn parse_listen(s: &str) -> Result<ListenAddr, String> {
    s.parse()
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("mailwarden: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
}

fn scan(config: Option<PathBuf>, mut input: ScanInput, as_json: bool) -> ExitCode {
    let config = match config::load(config.as_deref()) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    input.max_body = config.server.max_message_size;
    let pipeline = match Pipeline::from_config(&config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("mailwarden: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let findings = rt.block_on(explain::run(&pipeline, &input));
    if as_json {
        println!("{}", explain::json(&findings));
    } else {
        print!("{}", explain::text(&findings));
    }
    ExitCode::SUCCESS
}

/// Loads the file and builds everything `serve` would build from it (the DNS
/// resolver included), so a config that passes here also starts.
fn check_config(path: Option<PathBuf>) -> ExitCode {
    let c = match config::load(path.as_deref()) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{} error(s)", errors.0.len());
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = Pipeline::from_config(&c) {
        eprintln!("mailwarden: {e}");
        return ExitCode::FAILURE;
    }
    let source = c
        .source
        .as_ref()
        .map_or("built-in defaults".to_owned(), |p| p.display().to_string());
    println!("{source}: OK");
    let listen: Vec<String> = c.server.listen.iter().map(ToString::to_string).collect();
    println!("  listen: {}", listen.join(", "));
    println!("  authserv_id: {}", c.inbound.authserv_id);
    let dns = if c.dns.nameservers.is_empty() {
        "system resolver (/etc/resolv.conf)".to_owned()
    } else {
        let servers: Vec<String> = c.dns.nameservers.iter().map(ToString::to_string).collect();
        servers.join(", ")
    };
    println!("  dns: {dns}");
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Scan {
            config,
            ip,
            helo,
            from,
            rcpt,
            auth,
            json,
            file,
        } => {
            let message = match std::fs::read(&file) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("mailwarden: cannot read {}: {e}", file.display());
                    return ExitCode::FAILURE;
                }
            };
            let input = ScanInput {
                ip,
                helo,
                from,
                rcpt,
                auth,
                message,
                max_body: usize::MAX,
            };
            scan(config, input, json)
        }
        Command::Serve {
            config,
            listen,
            log_format,
        } => {
            let runtime = match runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            let options = ServeOptions {
                config_path: config,
                listen,
                log_format,
            };
            match runtime.block_on(daemon::serve(options)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mailwarden: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::CheckConfig { config } => check_config(config),
    }
}
