//! The `mailwarden` command: `serve` runs the milter daemon, `check-config` validates
//! a configuration file before a reload, `scan` explains what the daemon would do
//! with one message, `reports` sends and lists DMARC reports.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use mailwarden::ListenAddr;
use mailwarden::Pipeline;
use mailwarden::ScanInput;
use mailwarden::ServeOptions;
use mailwarden::config::{self, KeyAlgorithm, LogFormat};
use mailwarden::scan_report as explain;
use mailwarden::{dnscheck, genkey, rotate};

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
    /// Print the shell completion script for bash, zsh or fish.
    Completions { shell: clap_complete::Shell },
}

/// A new key: for which domain and selector, of what kind, owned by whom.
#[derive(clap::Args)]
struct KeyArgs {
    #[arg(long)]
    domain: String,
    /// Required for genkey; for keys rotate, default s<year><month>.
    #[arg(long, required = false)]
    selector: Option<String>,
    /// rsa-sha256 (genkey's default) or ed25519-sha256; for keys rotate, which
    /// of a domain's keys (when it has both).
    #[arg(long)]
    algorithm: Option<String>,
    /// RSA modulus size: 2048, 3072 or 4096.
    #[arg(long, default_value_t = 2048)]
    bits: usize,
    /// Owner of the key file (run as root), e.g. mailwarden.
    #[arg(long)]
    owner: Option<String>,
    /// Group of the key file; the file is then mode 0640.
    #[arg(long)]
    group: Option<String>,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make the next key for a domain beside its current one; print its DNS
    /// record, the configuration change and when to make it.
    Rotate {
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        #[command(flatten)]
        key: KeyArgs,
    },
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
    let c = match config::load(config::locate(path).0.as_deref()) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
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
    let config = match config::load(config::locate(config).0.as_deref()) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
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

fn algorithm(name: &str) -> Result<KeyAlgorithm, String> {
    match name {
        "rsa-sha256" => Ok(KeyAlgorithm::RsaSha256),
        "ed25519-sha256" => Ok(KeyAlgorithm::Ed25519Sha256),
        other => Err(format!("{other:?}: use rsa-sha256 or ed25519-sha256")),
    }
}

fn genkey(key: &KeyArgs, out: &Path) -> ExitCode {
    let (domain, selector, bits) = (
        key.domain.as_str(),
        key.selector.as_deref().unwrap_or(""),
        key.bits,
    );
    let (owner, group) = (key.owner.as_deref(), key.group.as_deref());
    let algorithm = match algorithm(key.algorithm.as_deref().unwrap_or("rsa-sha256")) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("mailwarden: --algorithm {e}");
            return ExitCode::FAILURE;
        }
    };
    for (what, value, check) in [
        (
            "--domain",
            domain,
            config::parse_domain as fn(&str) -> Result<String, String>,
        ),
        ("--selector", selector, config::parse_selector),
    ] {
        if let Err(e) = check(value) {
            eprintln!("mailwarden: {what}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let domain = domain.to_ascii_lowercase();
    let selector = selector.to_ascii_lowercase();
    let owner = match genkey::Ownership::named(owner, group) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mailwarden: {e}");
            return ExitCode::FAILURE;
        }
    };
    match genkey::generate(&domain, &selector, algorithm, bits, out, owner) {
        Err(e) => {
            eprintln!("mailwarden: {e}");
            ExitCode::FAILURE
        }
        Ok(g) => {
            print!("{}", g.instructions(&domain, &selector, algorithm));
            ExitCode::SUCCESS
        }
    }
}

fn rotate(path: Option<PathBuf>, key: &KeyArgs) -> ExitCode {
    let c = match config::load(config::locate(path).0.as_deref()) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let request =
        genkey::Ownership::named(key.owner.as_deref(), key.group.as_deref()).and_then(|owner| {
            Ok(rotate::Request {
                domain: &key.domain,
                selector: key.selector.as_deref(),
                algorithm: key.algorithm.as_deref().map(algorithm).transpose()?,
                rsa_bits: key.bits,
                owner,
            })
        });
    match request.and_then(|r| rotate::rotate(&c, &r)) {
        Ok(r) => {
            print!("{}", r.instructions());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mailwarden: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the file and builds everything `serve` would build from it (the DNS
/// resolver and the signing keys included), so a config that passes here also
/// starts. With `check_dns`, compares each selector's published key too.
fn check_config(path: Option<PathBuf>, check_dns: bool) -> ExitCode {
    let (path, from) = config::locate(path);
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
    if let Some(alerts) = &c.alerts
        && let Err(e) = mailwarden::check_alerts(alerts)
    {
        eprintln!("mailwarden: {e}");
        return ExitCode::FAILURE;
    }
    if let Some(admin) = &c.admin
        && let Err(e) = mailwarden::read_tokens(&admin.token_file)
            .and_then(|_| mailwarden::tls_config(admin).map_err(|e| e.to_string()))
    {
        eprintln!("mailwarden: {e}");
        return ExitCode::FAILURE;
    }
    let source = c
        .source
        .as_ref()
        .map_or("built-in defaults".to_owned(), |p| {
            format!("{} (from {from})", p.display())
        });
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
    for k in &c.signing.keys {
        println!(
            "  signing: {} with selector {} ({})",
            k.domain,
            k.selector,
            k.key_file.display()
        );
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    // clamd being down is not a configuration error (a reload must not wait for
    // it), so it is reported and does not change the exit status.
    if let Some(av) = &c.antivirus {
        rt.block_on(check_clamd(av));
    }
    if !check_dns {
        return ExitCode::SUCCESS;
    }
    let checks = match rt.block_on(dnscheck::check_config(&c)) {
        Ok(checks) => checks,
        Err(e) => {
            eprintln!("mailwarden: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for check in checks {
        match check.outcome {
            Ok(what) => println!("  dns: {}: OK, {what}", check.name),
            Err(why) => {
                failed = true;
                eprintln!("  dns: {}: ERROR: {why}", check.name);
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `PING` and `VERSION` to clamd; prints what it said or why it could not be asked.
async fn check_clamd(av: &config::AntivirusConfig) {
    let scanner = mailwarden::Scanner::new(av);
    let result = match scanner.ping().await {
        Ok(()) => scanner.ask_version().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(version) => println!("  antivirus: clamd {}: OK, {version}", av.clamd),
        Err(e) => eprintln!(
            "  antivirus: clamd {}: WARNING: {e} (until it answers, mail gets antivirus.on_error)",
            av.clamd
        ),
    }
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
        Command::CheckConfig { config, check_dns } => check_config(config, check_dns),
        Command::Genkey { key, out } if key.selector.is_some() => genkey(&key, &out),
        Command::Genkey { .. } => {
            eprintln!("mailwarden: genkey needs --selector");
            ExitCode::FAILURE
        }
        Command::Keys {
            command: KeysCommand::Rotate { config, key },
        } => rotate(config, &key),
        Command::Reports { command } => reports(command),
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
