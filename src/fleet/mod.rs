//! Fleet mode: the Redis (one server, or a Redis Cluster) that several mailwarden
//! hosts share for what must be counted across them. Every call has the
//! configured time-out; a connection that breaks is made again with backoff in
//! the background (the redis crate's connection manager, or the cluster client's
//! own). The health (`up`, the last error) is what `/readyz` and the metrics show.

mod batch;
mod limits;
mod stream;

pub use limits::{LimitCheck, Window};
pub use stream::StreamRow;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{ErrorKind, ServerErrorKind};
use tokio::sync::OnceCell;

use crate::config::{ClusterConfig, RedisServers};
use crate::observe::metrics::metrics;

enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

pub struct Fleet {
    config: ClusterConfig,
    conn: OnceCell<Conn>,
    up: AtomicBool,
    last_error: std::sync::Mutex<Option<String>>,
    /// Unique per process: the members this host adds to sliding windows.
    origin: String,
    seq: AtomicU64,
    /// Rate-limit checks of concurrent messages, sent together (one server).
    batcher: batch::Batcher,
}

impl Fleet {
    /// Checks the settings (the password file) now; the connection is made on
    /// first use, so a daemon starts while Redis is away.
    pub fn new(config: &ClusterConfig) -> Result<Arc<Fleet>, String> {
        config.password()?;
        config.tls_certificates()?;
        Ok(Arc::new(Fleet {
            config: config.clone(),
            conn: OnceCell::new(),
            up: AtomicBool::new(false),
            last_error: std::sync::Mutex::new(None),
            origin: format!("{}-{}", crate::config::host_name(), std::process::id()),
            seq: AtomicU64::new(0),
            batcher: batch::Batcher::default(),
        }))
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    async fn connect(&self) -> Result<Conn, String> {
        let password = self.config.password()?;
        let timeout = self.config.timeout;
        match &self.config.servers {
            RedisServers::Single(url) => {
                let mut info: redis::ConnectionInfo = url
                    .as_str()
                    .parse()
                    .map_err(|e: redis::RedisError| e.to_string())?;
                if let Some(p) = password {
                    let settings = info.redis_settings().clone().set_password(p);
                    info = info.set_redis_settings(settings);
                }
                let client = match self.config.tls_certificates()? {
                    Some(certs) => redis::Client::build_with_tls(info, certs),
                    None => redis::Client::open(info),
                }
                .map_err(|e| e.to_string())?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(1)))
                    .set_response_timeout(Some(timeout))
                    .set_max_delay(Duration::from_secs(2));
                ConnectionManager::new_lazy_with_config(client, config)
                    .map(Conn::Single)
                    .map_err(|e| e.to_string())
            }
            RedisServers::Cluster(nodes) => {
                let mut builder = redis::cluster::ClusterClient::builder(nodes.clone())
                    .connection_timeout(Duration::from_secs(1))
                    .response_timeout(timeout)
                    .retries(1);
                if let Some(p) = password {
                    builder = builder.password(p);
                }
                if let Some(certs) = self.config.tls_certificates()? {
                    builder = builder.certs(certs);
                }
                let client = builder.build().map_err(|e| e.to_string())?;
                tokio::time::timeout(Duration::from_secs(2), client.get_async_connection())
                    .await
                    .map_err(|_| "connecting to the cluster timed out".to_owned())?
                    .map(Conn::Cluster)
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Runs `cmd` with the time-out; records latency, errors and health. When
    /// `cmd` is an `EVALSHA` of `script` and Redis does not know the script yet
    /// (`NOSCRIPT`, after a restart), the script is loaded and `cmd` sent again,
    /// within the same time-out.
    async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
        script: Option<&str>,
    ) -> Result<T, String> {
        let start = Instant::now();
        let result = tokio::time::timeout(self.config.timeout, async {
            let conn = self.conn.get_or_try_init(|| self.connect()).await?;
            let run = async |cmd: &redis::Cmd| match conn {
                Conn::Single(c) => cmd.query_async::<redis::Value>(&mut c.clone()).await,
                Conn::Cluster(c) => cmd.query_async::<redis::Value>(&mut c.clone()).await,
            };
            let value = match (run(cmd).await, script) {
                (Err(e), Some(script))
                    if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) =>
                {
                    match run(redis::cmd("SCRIPT").arg("LOAD").arg(script)).await {
                        Ok(_) => run(cmd).await,
                        Err(e) => Err(e),
                    }
                }
                (result, _) => result,
            }
            .map_err(|e| e.to_string())?;
            T::from_redis_value(value).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {:?}", self.config.timeout)));
        metrics().observe("redis", start.elapsed());
        match &result {
            Ok(_) => {
                if !self.up.swap(true, Ordering::Relaxed) {
                    tracing::info!("Redis answers: fleet counting resumes");
                }
                metrics()
                    .redis_up
                    .set(i64::from(self.up.load(Ordering::Relaxed)));
            }
            Err(e) => self.note_failure(e),
        }
        result
    }

    /// Health and metrics after a call that failed, or that its caller gave up
    /// on (a time-out that ended the call before [`Fleet::query`] could see it).
    fn note_failure(&self, e: &str) {
        metrics().redis_errors.inc();
        if self.up.swap(false, Ordering::Relaxed) {
            tracing::warn!("Redis does not answer ({e}): cluster.on_redis_error applies");
        }
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_owned());
        metrics()
            .redis_up
            .set(i64::from(self.up.load(Ordering::Relaxed)));
    }

    /// Whether this is a Redis Cluster (keys of one call must share a slot).
    fn is_cluster(&self) -> bool {
        matches!(self.config.servers, RedisServers::Cluster(_))
    }

    /// `/readyz`: whether Redis answers a PING now.
    pub async fn ping(&self) -> Result<(), String> {
        self.query::<String>(&redis::cmd("PING"), None)
            .await
            .map(|_| ())
    }

    fn member(&self) -> String {
        format!(
            "{}-{}",
            self.origin,
            self.seq.fetch_add(1, Ordering::Relaxed)
        )
    }
}

impl crate::observe::fleet_counts::FleetGate for Fleet {
    fn first_in_fleet<'a>(
        &'a self,
        kind: &'a str,
        key: &'a str,
        cooldown: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, String>> + Send + 'a>>
    {
        Box::pin(async move {
            let ttl = u64::try_from(cooldown.as_millis())
                .unwrap_or(u64::MAX)
                .max(1);
            self.lock(&format!("alert:{kind}:{key}"), ttl).await
        })
    }
}

/// Per key: add this host's count to window `index`, forget the window two
/// before, and answer the fleet's count in this window and the previous one.
const ADD_COUNTS: &str = r"
local index = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local out = {}
for i, key in ipairs(KEYS) do
  redis.call('HINCRBY', key, index, ARGV[i + 2])
  redis.call('HDEL', key, index - 2)
  redis.call('PEXPIRE', key, ttl)
  out[i] = {tonumber(redis.call('HGET', key, index) or 0), tonumber(redis.call('HGET', key, index - 1) or 0)}
end
return out
";

impl Fleet {
    async fn add_counts_in(
        &self,
        index: u64,
        window_secs: u64,
        counts: &[(String, u64)],
    ) -> Result<Vec<(u64, u64)>, String> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(ADD_COUNTS).arg(counts.len());
        for (key, _) in counts {
            cmd.arg(format!("{}:al:{{{key}}}", self.config.prefix));
        }
        cmd.arg(index).arg(window_secs.saturating_mul(3000));
        for (_, n) in counts {
            cmd.arg(*n);
        }
        self.query(&cmd, None).await
    }
}

impl crate::observe::fleet_counts::FleetCounter for Fleet {
    fn add_counts<'a>(
        &'a self,
        index: u64,
        window_secs: u64,
        counts: &'a [(String, u64)],
    ) -> crate::observe::fleet_counts::FleetTotals<'a> {
        Box::pin(async move {
            if !self.is_cluster() {
                return self.add_counts_in(index, window_secs, counts).await;
            }
            // On a cluster each key lives on its own slot: one call per key.
            let calls = counts
                .iter()
                .map(|c| self.add_counts_in(index, window_secs, std::slice::from_ref(c)));
            let mut out = Vec::with_capacity(counts.len());
            for result in futures_util::future::join_all(calls).await {
                out.extend(result?);
            }
            Ok(out)
        })
    }
}
