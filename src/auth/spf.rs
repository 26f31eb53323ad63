//! SPF through `mail-auth`, plus the one RFC 7208 limit it does not enforce: at most
//! two "void" lookups (answers with no records, §4.6.4). We count them with caches
//! that wrap the shared ones for the duration of one check: `mail-auth` asks the
//! cache before every query and stores every answer that had records, so a miss
//! never followed by a store is a query that came back empty.

use std::borrow::Borrow;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Instant;

use mail_auth::spf::verify::SpfParameters;
use mail_auth::{MX, MessageAuthenticator, Parameters, RecordSet, ResolverCache, SpfResult, Txt};

use super::cache::TtlCache;
use super::dns::Caches;

/// RFC 7208 §4.6.4: more void lookups than this is a permerror.
const VOID_LOOKUP_LIMIT: i32 = 2;

pub(crate) struct SpfCheck {
    pub result: SpfResult,
    pub domain: String,
    pub void_lookups: i32,
}

struct Counting<'a, K, V> {
    inner: &'a TtlCache<K, V>,
    unanswered: &'a AtomicI32,
}

impl<K: Hash + Eq, V: Clone> ResolverCache<K, V> for Counting<'_, K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hit = self.inner.get(name);
        if hit.is_none() {
            self.unanswered.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.remove(name)
    }

    fn insert(&self, key: K, value: V, valid_until: Instant) {
        self.unanswered.fetch_sub(1, Ordering::Relaxed);
        self.inner.insert(key, value, valid_until);
    }
}

pub(crate) async fn check(
    resolver: &MessageAuthenticator,
    caches: &Caches,
    params: SpfParameters<'_>,
) -> SpfCheck {
    let unanswered = AtomicI32::new(0);
    let txt: Counting<'_, Box<str>, Txt> = Counting {
        inner: &caches.txt,
        unanswered: &unanswered,
    };
    let mx: Counting<'_, Box<str>, RecordSet<MX>> = Counting {
        inner: &caches.mx,
        unanswered: &unanswered,
    };
    let ipv4: Counting<'_, Box<str>, RecordSet<Ipv4Addr>> = Counting {
        inner: &caches.ipv4,
        unanswered: &unanswered,
    };
    let ipv6: Counting<'_, Box<str>, RecordSet<Ipv6Addr>> = Counting {
        inner: &caches.ipv6,
        unanswered: &unanswered,
    };
    let ptr: Counting<'_, IpAddr, RecordSet<Box<str>>> = Counting {
        inner: &caches.ptr,
        unanswered: &unanswered,
    };
    let output = resolver
        .check_host(
            Parameters::new(params)
                .with_txt_cache(&txt)
                .with_mx_cache(&mx)
                .with_ipv4_cache(&ipv4)
                .with_ipv6_cache(&ipv6)
                .with_ptr_cache(&ptr),
        )
        .await;
    // The first query (the domain's own TXT record) coming back empty is "none",
    // not a void lookup of the evaluation.
    let void_lookups =
        unanswered.load(Ordering::Relaxed) - i32::from(output.result() == SpfResult::None);
    let result = match output.result() {
        SpfResult::TempError | SpfResult::PermError | SpfResult::None => output.result(),
        _ if void_lookups > VOID_LOOKUP_LIMIT => SpfResult::PermError,
        other => other,
    };
    SpfCheck {
        result,
        domain: output.domain().to_owned(),
        void_lookups,
    }
}
