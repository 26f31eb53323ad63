//! JSON log lines: one object per event with `timestamp`, `level`, `message`
//! and every field at the top level, as tracing-subscriber's flattened JSON
//! writes them, except that the decision line's `auth` is an object
//! (`{"spf": "pass", "dkim": "none", ...}`), so a SIEM reads each check without
//! parsing a string; `-` (nothing checked) is an empty object.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub struct JsonLines;

struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        let v = if field.name() == "auth" {
            auth_object(value)
        } else {
            Value::from(value)
        };
        self.0.insert(field.name().to_owned(), v);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}

/// `spf=pass dkim=none` as `{"spf": "pass", "dkim": "none"}`.
fn auth_object(text: &str) -> Value {
    Value::Object(
        text.split_whitespace()
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect(),
    )
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields(Map::new());
        fields.0.insert(
            "timestamp".into(),
            Value::from(humantime_utc(std::time::SystemTime::now())),
        );
        fields.0.insert(
            "level".into(),
            Value::from(event.metadata().level().as_str()),
        );
        event.record(&mut fields);
        let line = serde_json::to_string(&Value::Object(fields.0)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{line}")
    }
}

/// RFC 3339 UTC with microseconds, as tracing-subscriber's default timer.
fn humantime_utc(now: std::time::SystemTime) -> String {
    let d = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = crate::calendar::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_becomes_an_object_and_times_are_rfc3339() {
        assert_eq!(
            auth_object("iprev=pass spf=fail dmarc=fail"),
            serde_json::json!({"iprev": "pass", "spf": "fail", "dmarc": "fail"})
        );
        assert_eq!(auth_object("-"), serde_json::json!({}));
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_micros(1_796_288_400_000_042);
        assert_eq!(humantime_utc(at), "2026-12-03T09:00:00.000042Z");
    }
}
