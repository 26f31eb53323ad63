//! parsedmarc (a DMARC report parser we did not write) reading a report mail.

use std::collections::BTreeMap;

/// parsedmarc's reading of the report attached to `raw`: (source IP, disposition)
/// → count, and the policy domain.
pub fn read(raw: &[u8]) -> (String, BTreeMap<(String, String), u64>, serde_json::Value) {
    let script = r#"
import sys, json, parsedmarc
parsed = parsedmarc.parse_report_email(sys.stdin.buffer.read(), offline=True)
assert parsed["report_type"] == "aggregate", parsed["report_type"]
r = parsed["report"]
print(json.dumps({
    "domain": r["policy_published"]["domain"],
    "policy": r["policy_published"],
    "records": [[x["source"]["ip_address"], x["policy_evaluated"]["disposition"], x["count"]] for x in r["records"]],
}))
"#;
    let v = super::python_json("parsedmarc", script, &[], raw);
    let mut counts = BTreeMap::new();
    for r in v["records"].as_array().unwrap() {
        let key = (
            r[0].as_str().unwrap().to_owned(),
            r[1].as_str().unwrap().to_owned(),
        );
        *counts.entry(key).or_insert(0) += r[2].as_u64().unwrap();
    }
    (
        v["domain"].as_str().unwrap().to_owned(),
        counts,
        v["policy"].clone(),
    )
}
