//! What a reload may change. Most settings apply to the next message; a few are fixed
//! for the life of the process (sockets, the session cap, the log format) and a
//! reload that changes them says so instead of pretending they took effect.

use super::model::Config;

/// The keys whose new values will only apply after a restart.
pub fn needs_restart(running: &Config, new: &Config) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if running.server.listen != new.server.listen {
        keys.push("server.listen");
    }
    if running.server.socket_mode != new.server.socket_mode {
        keys.push("server.socket_mode");
    }
    if running.server.max_sessions != new.server.max_sessions {
        keys.push("server.max_sessions");
    }
    if running.log.format != new.log.format {
        keys.push("log.format");
    }
    if (&running.log.syslog, &running.log.syslog_socket)
        != (&new.log.syslog, &new.log.syslog_socket)
    {
        keys.push("log.syslog, log.facility, log.syslog_socket");
    }
    let endpoint = |c: &Config| {
        c.admin.as_ref().map(|a| {
            (
                a.listen,
                a.tls.clone(),
                a.client_ca.clone(),
                a.public_metrics,
            )
        })
    };
    if endpoint(running) != endpoint(new) {
        keys.push("admin (listen, TLS files, public_metrics)");
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LogFormat, built_in};

    #[test]
    fn names_the_keys_that_need_a_restart() {
        let running = built_in();
        let mut new = running.clone();
        new.server.trace_header = false;
        new.server.eom_timeout *= 2;
        assert!(needs_restart(&running, &new).is_empty());
        new.server.max_sessions = 10;
        new.log.format = LogFormat::Json;
        assert_eq!(
            needs_restart(&running, &new),
            vec!["server.max_sessions", "log.format"]
        );
    }
}
