//! The `mailwarden` command: `serve` runs the milter daemon, `check-config` validates
//! a configuration file before a reload.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use mailwarden::config::{self, LogFormat};
use mailwarden::daemon::{self, ServeOptions};
use mailwarden::milter::ListenAddr;

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
}

fn parse_listen(s: &str) -> Result<ListenAddr, String> {
    s.parse()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            listen,
            log_format,
        } => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("mailwarden: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
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
        Command::CheckConfig { config } => match config::load(config.as_deref()) {
            Ok(c) => {
                let source = c
                    .source
                    .as_ref()
                    .map_or("built-in defaults".to_owned(), |p| p.display().to_string());
                println!("{source}: OK");
                let listen: Vec<String> = c.server.listen.iter().map(ToString::to_string).collect();
                println!("  listen: {}", listen.join(", "));
                println!("  authserv_id: {}", c.inbound.authserv_id);
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                eprintln!("{} error(s)", errors.0.len());
                ExitCode::FAILURE
            }
        },
    }
}
