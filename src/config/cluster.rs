//! `[cluster]`: fleet mode. Several mailwarden hosts share their rate-limit
//! counters through one Redis (or a Redis Cluster); without the section
//! everything stays in this process's memory.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::check::Checker;
use super::model::{ClusterConfig, OnRedisError, RedisServers};
use super::parse::S;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    redis: S<String>,
    nodes: S<Vec<Spanned<String>>>,
    password_file: S<String>,
    ca_file: S<String>,
    timeout: S<String>,
    prefix: S<String>,
    on_redis_error: Option<RawOnRedisError>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOnRedisError {
    rate_limits: S<String>,
}

fn url(t: &str) -> Result<String, String> {
    let rest = t
        .strip_prefix("redis://")
        .or_else(|| t.strip_prefix("rediss://"))
        .ok_or_else(|| format!("{t:?} is not a redis:// or rediss:// URL"))?;
    if rest.contains('@') {
        return Err("put the password in password_file, not in the URL (the URL is logged)".into());
    }
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("{t:?} names no host"));
    }
    Ok(t.to_owned())
}

pub(super) fn check_cluster(
    c: &mut Checker<'_>,
    raw: Spanned<RawCluster>,
    file: Option<&Path>,
) -> ClusterConfig {
    let span = raw.span();
    let raw = raw.into_inner();
    let servers = match (raw.redis, raw.nodes) {
        (Some(one), None) => {
            RedisServers::Single(c.value(Some(one), "cluster.redis", String::new(), url))
        }
        (None, Some(nodes)) => {
            let list = c.list(nodes.into_inner(), "cluster.nodes", url);
            if list.is_empty() {
                c.error(
                    Some(span.clone()),
                    "cluster.nodes",
                    "needs at least one node",
                );
            }
            RedisServers::Cluster(list)
        }
        (Some(one), Some(_)) => {
            c.error(
                Some(one.span()),
                "cluster.redis",
                "give redis (one server) or nodes (a Redis Cluster), not both",
            );
            RedisServers::Single(String::new())
        }
        (None, None) => {
            c.error(
                Some(span),
                "cluster",
                "needs redis = \"redis://HOST:PORT/DB\" or nodes = [...] (a Redis Cluster)",
            );
            RedisServers::Single(String::new())
        }
    };
    let dir = super::parse::config_dir(file);
    let on_error = raw.on_redis_error.unwrap_or_default();
    ClusterConfig {
        servers,
        password_file: raw.password_file.map(|p| dir.join(p.get_ref())),
        ca_file: raw.ca_file.map(|p| dir.join(p.get_ref())),
        timeout: c.duration(raw.timeout, "cluster.timeout", Duration::from_millis(50)),
        prefix: c.value(raw.prefix, "cluster.prefix", "mailwarden".into(), |t| {
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic() && b != b'{' && b != b'}') {
                Ok(t.to_owned())
            } else {
                Err("letters, digits and punctuation except { }".into())
            }
        }),
        rate_limits_on_error: c.value(
            on_error.rate_limits,
            "cluster.on_redis_error.rate_limits",
            OnRedisError::Local,
            |t| match [OnRedisError::Tempfail, OnRedisError::Accept, OnRedisError::Local]
                .into_iter()
                .find(|a| a.as_str() == t)
            {
                Some(action) => Ok(action),
                None => Err(format!(
                    "{t:?} is not an action: use \"tempfail\", \"accept\" or \"local\" (count in memory meanwhile)"
                )),
            },
        ),
    }
}

impl OnRedisError {
    /// As the configuration spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            OnRedisError::Tempfail => "tempfail",
            OnRedisError::Accept => "accept",
            OnRedisError::Local => "local",
        }
    }
}

impl ClusterConfig {
    /// `rediss://`: the CA certificates of `ca_file` (checked to hold at least
    /// one PEM certificate), for the redis crate.
    pub fn tls_certificates(&self) -> Result<Option<redis::TlsCertificates>, String> {
        let Some(path) = &self.ca_file else {
            return Ok(None);
        };
        crate::tls::root_store(path).map_err(|e| format!("cluster.ca_file {e}"))?;
        let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Some(redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        }))
    }

    /// The password, read from `password_file` (refused when others may read it).
    pub fn password(&self) -> Result<Option<String>, String> {
        match &self.password_file {
            None => Ok(None),
            Some(path) => {
                let bytes =
                    crate::secret::read(path).map_err(|e| format!("cluster.password_file: {e}"))?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| format!("{}: not UTF-8 text", path.display()))?;
                Ok(Some(text.trim().to_owned()))
            }
        }
    }
}
