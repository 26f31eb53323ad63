//! Who may have mail signed as whom: `[[signing.senders]]` binds a SASL login, a
//! client network or local submission to the From domains and addresses it may
//! use. Without the binding, any authenticated account could get mail signed for
//! every domain we hold a key for: a compromised one would send DMARC-passing
//! phishing in our customers' names.

use crate::config::{SenderBinding, SenderId};
use crate::direction::{Origin, shown_login};

/// `Ok` when `origin` may send with these From addresses (or no binding is
/// configured at all); `Err` says who may not use which address.
pub fn authorize(
    senders: &[SenderBinding],
    origin: &Origin,
    from: &[String],
) -> Result<(), String> {
    if senders.is_empty() {
        return Ok(());
    }
    let mine: Vec<&SenderBinding> = senders.iter().filter(|b| is(origin, &b.who)).collect();
    let who = describe(origin);
    if mine.is_empty() {
        return Err(format!("{who} has no [[signing.senders]] entry"));
    }
    for address in from {
        let address = address.to_ascii_lowercase();
        if !mine
            .iter()
            .any(|b| b.from.iter().any(|p| p.allows(&address)))
        {
            return Err(format!("{who} may not send as {address}"));
        }
    }
    Ok(())
}

fn is(origin: &Origin, who: &SenderId) -> bool {
    match (origin, who) {
        (Origin::Authenticated(user), SenderId::User(u)) => user == u,
        (Origin::TrustedNetwork(ip), SenderId::Network(net)) => net.contains(ip),
        (Origin::Local, SenderId::Local) => true,
        _ => false,
    }
}

fn describe(origin: &Origin) -> String {
    match origin {
        Origin::Authenticated(user) => format!("user {}", shown_login(user)),
        Origin::TrustedNetwork(ip) => format!("client {ip}"),
        Origin::Local => "local submission".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    fn senders() -> Vec<SenderBinding> {
        let c = parse_str(
            r#"
[[signing.senders]]
user = "app-mailer"
from = ["example.com", "noreply@example.org"]

[[signing.senders]]
network = "10.1.0.0/16"
from = ["*.example.net"]

[[signing.senders]]
local = true
from = ["example.com"]
"#,
            None,
        )
        .unwrap();
        c.signing.senders
    }

    #[test]
    fn a_sender_may_use_only_its_own_from_addresses() {
        let s = senders();
        let app = Origin::Authenticated("app-mailer".into());
        let ok = |o: &Origin, from: &[&str]| {
            let from: Vec<String> = from.iter().map(|f| (*f).to_owned()).collect();
            authorize(&s, o, &from)
        };
        assert!(ok(&app, &["Billing@Example.COM"]).is_ok());
        assert!(ok(&app, &["noreply@example.org"]).is_ok());
        assert_eq!(
            ok(&app, &["ceo@example.org"]).unwrap_err(),
            "user app-mailer may not send as ceo@example.org"
        );
        assert!(ok(&app, &["a@sub.example.com"]).is_err(), "no subdomains");
        let other = Origin::Authenticated("app-mailer2".into());
        assert_eq!(
            ok(&other, &["a@example.com"]).unwrap_err(),
            "user app-mailer2 has no [[signing.senders]] entry"
        );
        let host = Origin::TrustedNetwork("10.1.2.3".parse().unwrap());
        assert!(ok(&host, &["a@mail.example.net"]).is_ok());
        assert!(
            ok(&host, &["a@example.net"]).is_err(),
            "*. is subdomains only"
        );
        let outside = Origin::TrustedNetwork("10.2.0.1".parse().unwrap());
        assert!(ok(&outside, &["a@mail.example.net"]).is_err());
        assert!(ok(&Origin::Local, &["root@example.com"]).is_ok());
        assert!(authorize(&[], &app, &["x@y.test".into()]).is_ok());
    }

    #[test]
    fn sender_entries_are_checked() {
        for (bad, complaint) in [
            (
                "user = \"a\"\nnetwork = \"10.0.0.0/8\"\nfrom = [\"a.test\"]",
                "exactly one of",
            ),
            ("user = \"a\"", "from: is required"),
            ("user = \"a\"\nfrom = [\"not a domain\"]", "senders[0].from"),
            (
                "network = \"10.0.0.300\"\nfrom = [\"a.test\"]",
                "not an IP address",
            ),
        ] {
            let err = parse_str(&format!("[[signing.senders]]\n{bad}\n"), None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(complaint), "{bad}: {err}");
        }
    }
}
