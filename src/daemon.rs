//! `mailwarden serve`: load the configuration, bind every socket, tell systemd we are
//! ready, then serve until SIGTERM, reloading on SIGHUP. A reload is validated in
//! full before it replaces anything; a broken file leaves the running configuration
//! in place and says why.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::admin;
use crate::config::{self, Config, LogFormat};
use crate::net::ListenAddr;
use crate::observe::{self, LogHandle};
use crate::pipeline::Pipeline;
use crate::reports::Recorder;
use crate::session::{Server, Service};
use crate::shutdown;
use crate::systemd;

/// What the command line says about serving.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    pub config_path: Option<PathBuf>,
    /// Why that file (see `config::locate`), for the first log line.
    pub config_from: &'static str,
    /// Replaces `server.listen` when not empty.
    pub listen: Vec<ListenAddr>,
    /// Replaces `log.format` when given.
    pub log_format: Option<LogFormat>,
}

impl ServeOptions {
    /// Loads the configuration with the command-line overrides applied.
    fn load(&self) -> Result<Config, config::ConfigErrors> {
        let mut config = config::load(self.config_path.as_deref())?;
        if !self.listen.is_empty() {
            config.server.listen = self.listen.clone();
        }
        if let Some(format) = self.log_format {
            config.log.format = format;
        }
        Ok(config)
    }
}

/// The service for `config`. The anomaly detector is `running`'s when `[alerts]`
/// did not change (its baselines carry over), else a new one for the new section.
fn service(
    config: &Config,
    running: Option<(&Config, &Service<Pipeline>)>,
) -> Result<Arc<Service<Pipeline>>, String> {
    let pipeline = Pipeline::from_config(config).map_err(|e| e.to_string())?;
    if let Some(alerts) = &config.alerts {
        observe::alerts::check(alerts)?;
    }
    let detector = match running {
        Some((old, service)) if old.alerts == config.alerts && old.cluster == config.cluster => {
            service.filter.detector().cloned()
        }
        _ => match &config.alerts {
            Some(alerts) => {
                // Fleet mode: the message rates are the fleet's, and an alert
                // goes to the sinks once per fleet.
                let fleet = match &config.cluster {
                    Some(c) => Some(crate::fleet::Fleet::new(c)?),
                    None => None,
                };
                let gate = fleet
                    .clone()
                    .map(|f| f as Arc<dyn observe::fleet_counts::FleetGate>);
                let counter = fleet.map(|f| f as Arc<dyn observe::fleet_counts::FleetCounter>);
                Some(observe::alerts::start(alerts, gate, counter))
            }
            None => None,
        },
    };
    // The report writer carries over when [reports], the authserv-id and the DNS
    // its failure round resolves with did not change (queued rows stay queued).
    let recorder = match running {
        Some((old, service))
            if old.reports == config.reports
                && old.inbound.authserv_id == config.inbound.authserv_id
                && old.dns == config.dns
                && old.inbound.dmarc_discovery == config.inbound.dmarc_discovery =>
        {
            service.filter.recorder().cloned()
        }
        _ => config.reports.as_ref().map(|r| Recorder::start(config, r)),
    };
    // Rate-limit counts carry over a reload that keeps the limits and [cluster].
    let pipeline = match running {
        Some((old, service))
            if old.rate_limits == config.rate_limits
                && old.rate_limit_keys == config.rate_limit_keys
                && old.cluster == config.cluster =>
        {
            pipeline.with_counters_of(&service.filter)
        }
        _ => pipeline,
    };
    Ok(Arc::new(Service {
        settings: config.server.session_settings(),
        filter: pipeline.with_detector(detector).with_recorder(recorder),
    }))
}

/// Runs the daemon to its end. Errors before serving (bad config, a socket that
/// cannot be bound) are returned as text for `main` to print and exit non-zero.
pub async fn serve(options: ServeOptions) -> Result<(), String> {
    let config = options.load().map_err(|e| e.to_string())?;
    let log = observe::init(&config.log);
    observe::metrics::metrics().config_loaded_now();
    // Handlers first: a SIGHUP that arrived before them would kill the process.
    let signal_error = |e: std::io::Error| format!("cannot install signal handlers: {e}");
    let mut hangup = signal(SignalKind::hangup()).map_err(signal_error)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_error)?;
    match &config.source {
        Some(path) => info!(
            version = env!("CARGO_PKG_VERSION"),
            "mailwarden starting with configuration {} (from {})",
            path.display(),
            options.config_from
        ),
        None => info!(
            version = env!("CARGO_PKG_VERSION"),
            "mailwarden starting on built-in defaults (no -c, no MAILWARDEN_CONFIG, no {}): listen {}, system DNS",
            config::DEFAULT_PATH,
            config
                .server
                .listen
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }

    check_fd_limit(
        config.server.max_sessions + config.admin.as_ref().map_or(0, |a| a.max_connections),
    );
    let first = service(&config, None).inspect_err(|e| error!("{e}"))?;
    let (services_tx, services_rx) = watch::channel(first);
    let admin_services = services_rx.clone();
    // The admin endpoint listens before the milter port opens: once Postfix can
    // reach us, so can the monitoring that asks whether we are ready.
    let (trigger, shutdown) = shutdown::channel();
    // Metrics are recorded only when an endpoint can show them.
    observe::metrics::metrics().enable(config.admin.is_some());
    let admin = match &config.admin {
        Some(a) => {
            let admin =
                Arc::new(admin::Admin::new(a, admin_services).inspect_err(|e| error!("{e}"))?);
            admin::serve(a, admin.clone(), shutdown.clone())
                .await
                .inspect_err(|e| error!("{e}"))?;
            Some(admin)
        }
        None => None,
    };
    let server = Server::bind(
        &config.server.listen,
        config.server.socket_mode,
        config.server.max_sessions,
        services_rx,
    )
    .await
    .map_err(|e| {
        error!("{e}");
        e.to_string()
    })?;
    for addr in server.local_addrs() {
        info!(listen = %addr, "listening for milter connections");
    }
    let drain = config.server.shutdown_timeout;
    let serving = tokio::spawn(server.serve(shutdown, drain));
    systemd::notify("READY=1\nSTATUS=serving");

    let mut running = config;
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                reload(&options, &mut running, &services_tx, &log);
                if let (Some(admin), Some(a)) = (&admin, &running.admin) {
                    admin.reload_tokens(a);
                }
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    info!("shutting down: no new connections; sessions finish their message");
    systemd::notify("STOPPING=1\nSTATUS=draining");
    trigger.trigger();
    match serving.await {
        Ok(drained) if drained.abandoned == 0 => info!("all sessions finished; exiting"),
        Ok(drained) => warn!(
            abandoned = drained.abandoned,
            "exiting with sessions still open"
        ),
        Err(e) => error!("server task failed: {e}"),
    }
    // Store the DMARC report rows still queued before the process ends.
    let recorder = services_tx.borrow().filter.recorder().cloned();
    if let Some(recorder) = recorder {
        let stored =
            tokio::task::spawn_blocking(move || recorder.flush(std::time::Duration::from_secs(10)))
                .await
                .unwrap_or(false);
        if !stored {
            warn!("DMARC report rows may not all be stored: the writer did not finish in 10 s");
        }
    }
    Ok(())
}

/// Each milter session and admin connection holds one descriptor: raise the soft
/// limit to the hard one, and say so if even that cannot hold them all.
fn check_fd_limit(max_sessions: u32) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for getrlimit/setrlimit to read and fill.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    let needed = u64::from(max_sessions) + 64;
    if limit.rlim_cur < needed {
        warn!(
            open_files = limit.rlim_cur,
            max_sessions,
            "the open-file limit is below server.max_sessions; raise LimitNOFILE or lower max_sessions"
        );
    }
}

fn reload(
    options: &ServeOptions,
    running: &mut Config,
    services: &watch::Sender<Arc<Service<Pipeline>>>,
    log: &LogHandle,
) {
    systemd::reloading();
    let loaded = options
        .load()
        .map_err(|errors| errors.0.iter().map(ToString::to_string).collect::<Vec<_>>())
        .and_then(|new| {
            let current = services.borrow().clone();
            service(&new, Some((running, &current)))
                .map(|s| (new, s))
                .map_err(|e| vec![e])
        });
    match loaded {
        Err(errors) => {
            for e in &errors {
                error!("reload refused, keeping the running configuration: {e}");
            }
            observe::metrics::metrics()
                .config_reloads
                .get_or_create(&observe::metrics::ResultLabels { result: "failure" })
                .inc();
        }
        Ok((new, service)) => {
            for key in config::needs_restart(running, &new) {
                warn!(
                    key,
                    "changed in the new configuration; it takes effect only after a restart"
                );
            }
            if let Err(e) = log.set_level(&new.log.level) {
                warn!("log.level not applied: {e}");
            }
            services.send_replace(service);
            let m = observe::metrics::metrics();
            m.config_reloads
                .get_or_create(&observe::metrics::ResultLabels { result: "success" })
                .inc();
            m.config_loaded_now();
            info!(
                source = new
                    .source
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .as_deref()
                    .unwrap_or("built-in defaults"),
                "configuration reloaded; new messages use it"
            );
            *running = new;
        }
    }
    systemd::notify("READY=1\nSTATUS=serving");
}
