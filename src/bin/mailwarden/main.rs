//! The `mailwarden` command: `serve` runs the milter daemon, `check-config` validates
//! a configuration file before a reload, `scan` explains what the daemon would do
//! with one message, `reports` sends and lists DMARC reports.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod audit;
mod check;
mod keys;

use keys::{KeyArgs, KeysCommand};

use mailwarden::ListenAddr;
use mailwarden::Pipeline;
use mailwarden::ScanInput;
use mailwarden::ServeOptions;
use mailwarden::config::{self, LogFormat};
use mailwarden::scan_report as explain;

/// glibc malloc took a sixth of the daemon's CPU under load (small allocations per
/// milter packet, from every worker thread); mimalloc's per-thread heaps cost less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// Also fetch each signing selector's DNS record and compare it with the
        /// private key.
        #[arg(long)]
        check_dns: bool,
    },
    /// Generate a DKIM key (mode 0600, 0640 with --group) and print the DNS TXT
    /// record to publish.
    Genkey {
        #[command(flatten)]
        key: KeyArgs,
        /// Directory for the key file (<domain>.<selector>.pem).
        #[arg(long)]
        out: PathBuf,
    },
    /// Signing keys: `rotate` makes the next key for a domain.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
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
    /// DMARC reports (RFC 9990 aggregate, RFC 9991 failure) from the [reports] store.
    Reports {
        #[command(subcommand)]
        command: ReportsCommand,
    },
    /// Audit one of your domains as receivers see it in the DNS: SPF (lookups
    /// with includes resolved), DKIM (the published keys against ours), DMARC
    /// (RFC 9989, report destinations), MTA-STS, TLS-RPT. Exit 0 ok, 1
    /// warnings, 2 errors.
    DnsAudit {
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        domain: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Print the shell completion script for bash, zsh or fish.
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand)]
enum ReportsCommand {
    /// Build the aggregate reports of finished periods, then deliver every report
    /// mail due over SMTP ([reports] smtp). Exit 2 when a mail failed or waits
    /// for a retry.
    Send {
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// Write each mail as DIR/<id>-<report id>.eml instead of sending it.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Include the current, unfinished period (for tests, and for retiring a host).
        #[arg(long)]
        all: bool,
    },
    /// Show the records waiting for a report and the report mails with their state.
    List {
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// Report mails shown at most (newest first).
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

fn reports(command: ReportsCommand) -> ExitCode {
    let path = match &command {
        ReportsCommand::Send { config, .. } | ReportsCommand::List { config, .. } => config.clone(),
    };
    let Some(c) = load_config(path) else {
        return ExitCode::FAILURE;
    };
    match command {
        ReportsCommand::List { limit, .. } => match mailwarden::reports_list(&c, limit) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mailwarden: {e}");
                ExitCode::FAILURE
            }
        },
        ReportsCommand::Send { out, all, .. } => {
            let rt = match runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            let options = mailwarden::ReportSendOptions { out, all };
            match rt.block_on(mailwarden::reports_send(&c, &options)) {
                Ok(s) => {
                    for note in &s.notes {
                        eprintln!("mailwarden: {note}");
                    }
                    println!(
                        "reports: {} built, {} sent, {} written, {} deferred, {} failed, {} unauthorized",
                        s.built, s.sent, s.written, s.deferred, s.failed, s.unauthorized
                    );
                    if s.failed + s.deferred > 0 {
                        ExitCode::from(2)
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(e) => {
                    eprintln!("mailwarden: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn parse_listen(s: &str) -> Result<ListenAddr, String> {
    s.parse()
}

/// The configuration a command works on (`-c`, else `MAILWARDEN_CONFIG`, else
/// the default path, else built-in defaults); `None` once its errors are printed.
pub(crate) fn load_config(path: Option<PathBuf>) -> Option<config::Config> {
    config::load(config::locate(path).0.as_deref())
        .map_err(|errors| eprintln!("{errors}"))
        .ok()
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("mailwarden: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
}

fn scan(config: Option<PathBuf>, mut input: ScanInput, as_json: bool) -> ExitCode {
    let Some(config) = load_config(config) else {
        return ExitCode::FAILURE;
    };
    input.max_body = config.server.max_message_size;
    let pipeline = match Pipeline::from_config(&config) {
        Ok(p) => p.explaining(),
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve { .. }) {
        // A command whose output goes to a pipe closed early (`check-config |
        // head`) ends quietly, as other Unix tools do, instead of panicking in
        // println!. The daemon keeps Rust's default (SIGPIPE ignored): a peer
        // that goes away is an error on that one socket.
        // SAFETY: called before any thread starts; SIG_DFL is a valid handler.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
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
            let (config_path, config_from) = config::locate(config);
            let options = ServeOptions {
                config_path,
                config_from,
                listen,
                log_format,
            };
            match runtime.block_on(mailwarden::serve(options)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mailwarden: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::CheckConfig { config, check_dns } => check::check_config(config, check_dns),
        Command::Genkey { key, out } if key.selector.is_some() => keys::genkey(&key, &out),
        Command::Genkey { .. } => {
            eprintln!("mailwarden: genkey needs --selector");
            ExitCode::FAILURE
        }
        Command::Keys {
            command: KeysCommand::Rotate { config, key },
        } => keys::rotate(config, &key),
        Command::Reports { command } => reports(command),
        Command::DnsAudit {
            config,
            domain,
            json,
        } => audit::dns_audit(config, &domain, json),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "mailwarden",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
    }
}
