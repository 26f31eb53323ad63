//! dkimpy (a DKIM verifier we did not write) over a message, resolving keys
//! through our private knot.

/// Verifies every DKIM-Signature of `raw` with dkimpy, resolving keys through knot.
/// Returns one (d, s, a, verified) per signature, top to bottom.
pub fn verify(raw: &[u8], dns_port: u16) -> Vec<(String, String, String, bool)> {
    let script = r#"
import sys, json, dkim, dns.resolver
port = int(sys.argv[1])
r = dns.resolver.Resolver(configure=False)
r.nameservers = ["127.0.0.1"]
r.port = port
def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    try:
        answer = r.resolve(name, "TXT", lifetime=timeout)
    except Exception:
        return None
    return b"".join(b"".join(rd.strings) for rd in answer)
msg = sys.stdin.buffer.read()
d = dkim.DKIM(msg)
out = []
sigs = [h for h in d.headers if h[0].lower() == b"dkim-signature"]
for i, (name, value) in enumerate(sigs):
    tags = dkim.util.parse_tag_value(value)
    try:
        ok = d.verify(idx=i, dnsfunc=dnsfunc)
    except dkim.ValidationError as e:
        print(f"signature {i}: {e}", file=sys.stderr)
        ok = False
    out.append([tags[b"d"].decode(), tags[b"s"].decode(), tags[b"a"].decode(), bool(ok)])
print(json.dumps(out))
"#;
    let v = super::python_json("dkimpy", script, &[&dns_port.to_string()], raw);
    serde_json::from_value(v).expect("dkimpy results")
}
