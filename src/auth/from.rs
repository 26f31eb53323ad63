//! The author domains of a message: every From field parsed as an RFC 5322
//! address list (§3.4, with the obsolete syntax of §4.4 that real mail still
//! uses: whitespace and comments around "@" and ".", empty list elements; groups
//! per RFC 6854). DMARC is evaluated for these domains; a From that yields none
//! cannot be evaluated, and RFC 7489 §6.6.1 leaves such mail to local policy
//! (`inbound.on_bad_from`).

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'a> {
    Atom(&'a str),
    /// A quoted string (its content is never needed: a display name or a local part).
    Quoted,
    /// The inside of `[...]`.
    Literal(&'a str),
    Special(u8),
}

/// Why a From field gives no author domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BadFrom {
    Missing,
    Unparseable(String),
    /// It parses, but its domain is an address literal or no DNS name.
    NoDomain(String),
}

impl std::fmt::Display for BadFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadFrom::Missing => f.write_str("no From field"),
            BadFrom::Unparseable(why) => write!(f, "From does not parse: {why}"),
            BadFrom::NoDomain(literal) => {
                write!(
                    f,
                    "From has no domain DMARC can check ({literal} is an address literal)"
                )
            }
        }
    }
}

/// The author domains (lower case, in order, without repeats) of these From
/// field values; an error when there is none or one of them does not parse.
pub(crate) fn author_domains(fields: &[&[u8]]) -> Result<Vec<String>, BadFrom> {
    if fields.is_empty() {
        return Err(BadFrom::Missing);
    }
    let mut domains: Vec<String> = Vec::new();
    for field in fields {
        for domain in addresses(field).map_err(BadFrom::Unparseable)? {
            if !domains.contains(&domain) {
                domains.push(domain);
            }
        }
    }
    if domains.is_empty() {
        return Err(BadFrom::Unparseable("no address in it".into()));
    }
    // An address literal, or a name no DNS can hold, has no DMARC policy to find:
    // as good as no author domain at all (and retrying cannot change that).
    for domain in &domains {
        dns_name(domain).map_err(BadFrom::NoDomain)?;
    }
    Ok(domains)
}

/// `Ok` when `domain` can be a DNS name (RFC 1035 §2.3.4: labels of 1 to 63
/// octets, 253 in all); a domain literal (`[192.0.2.1]`) cannot.
fn dns_name(domain: &str) -> Result<(), String> {
    let shown: String = domain
        .chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect();
    if domain.starts_with('[') {
        return Err(format!("{shown} is an address literal, not a name"));
    }
    let name = domain.trim_end_matches('.');
    if name.is_empty() || name.len() > 253 {
        return Err(format!("{shown} is not a domain name (1 to 253 octets)"));
    }
    if let Some(label) = name.split('.').find(|l| l.is_empty() || l.len() > 63) {
        return Err(format!(
            "{shown} is not a domain name: a label of {} octets (1 to 63)",
            label.len()
        ));
    }
    Ok(())
}

/// The domains of one field's mailboxes.
fn addresses(value: &[u8]) -> Result<Vec<String>, String> {
    let text = String::from_utf8_lossy(value);
    let tokens = tokenize(&text)?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        // One address: up to the next "," outside a group.
        let start = i;
        let mut in_group = false;
        while i < tokens.len() {
            match tokens[i] {
                Token::Special(b':') if !in_group && !has_angle(&tokens[start..i]) => {
                    in_group = true;
                }
                Token::Special(b';') if in_group => in_group = false,
                Token::Special(b',') if !in_group => break,
                _ => {}
            }
            i += 1;
        }
        if in_group {
            return Err("a group without its closing ';'".into());
        }
        let element = &tokens[start..i];
        i += 1;
        if element.is_empty() {
            continue;
        }
        match element.iter().position(|t| *t == Token::Special(b':')) {
            Some(colon) if !has_angle(&element[..colon]) => {
                // display-name ":" [mailbox-list] ";"
                let inner = &element[colon + 1..element.len() - 1];
                for mailbox in inner.split(|t| *t == Token::Special(b',')) {
                    if !mailbox.is_empty() {
                        out.push(mailbox_domain(mailbox)?);
                    }
                }
            }
            _ => out.push(mailbox_domain(element)?),
        }
    }
    Ok(out)
}

fn has_angle(tokens: &[Token]) -> bool {
    tokens.contains(&Token::Special(b'<'))
}

/// name-addr or addr-spec → the domain.
fn mailbox_domain(tokens: &[Token]) -> Result<String, String> {
    let spec = match tokens.iter().position(|t| *t == Token::Special(b'<')) {
        Some(open) => {
            if let Some(bad) = tokens[..open]
                .iter()
                .find(|t| matches!(t, Token::Special(c) if *c != b'.'))
            {
                return Err(format!("{} in a display name", shown(bad)));
            }
            let close = tokens
                .iter()
                .position(|t| *t == Token::Special(b'>'))
                .filter(|c| *c > open)
                .ok_or("'<' without '>'")?;
            if close + 1 != tokens.len() {
                return Err("text after '>'".into());
            }
            let inner = &tokens[open + 1..close];
            // obs-route: "@a,@b:" before the address.
            match inner.iter().position(|t| *t == Token::Special(b':')) {
                Some(colon) if inner.first() == Some(&Token::Special(b'@')) => &inner[colon + 1..],
                _ => inner,
            }
        }
        None => tokens,
    };
    let at = spec
        .iter()
        .rposition(|t| *t == Token::Special(b'@'))
        .ok_or_else(|| "an address without '@'".to_owned())?;
    local_part(&spec[..at])?;
    domain(&spec[at + 1..])
}

/// word *("." word), the obsolete form allowing CFWS around the dots.
fn local_part(tokens: &[Token]) -> Result<(), String> {
    let ok = !tokens.is_empty()
        && tokens.iter().enumerate().all(|(i, t)| match t {
            Token::Atom(_) | Token::Quoted => i % 2 == 0,
            Token::Special(b'.') => i % 2 == 1,
            _ => false,
        })
        && tokens.len() % 2 == 1;
    if ok {
        Ok(())
    } else {
        Err("a local part that is not words separated by dots".into())
    }
}

/// atom *("." atom) or a domain literal.
fn domain(tokens: &[Token]) -> Result<String, String> {
    if let [Token::Literal(literal)] = tokens {
        return Ok(format!(
            "[{}]",
            literal.split_whitespace().collect::<String>()
        ));
    }
    let mut name = String::new();
    for (i, token) in tokens.iter().enumerate() {
        match (i % 2, token) {
            (0, Token::Atom(atom)) => name.push_str(atom),
            (1, Token::Special(b'.')) => name.push('.'),
            _ => return Err(format!("{} in the domain", shown(token))),
        }
    }
    if name.is_empty() || name.ends_with('.') {
        return Err("an empty domain".into());
    }
    Ok(name.to_ascii_lowercase())
}

fn shown(token: &Token) -> String {
    match token {
        Token::Special(c) => format!("'{}'", char::from(*c)),
        Token::Atom(w) => format!("{w:?}"),
        Token::Quoted => "a quoted string".into(),
        Token::Literal(l) => format!("[{l}]"),
    }
}

/// Atoms, quoted strings, literals and specials; comments and folding whitespace
/// dropped. Atoms and literals borrow from the text: no allocation per token.
fn tokenize(text: &str) -> Result<Vec<Token<'_>>, String> {
    let mut chars = text.char_indices().peekable();
    let mut tokens = Vec::new();
    while let Some((at, c)) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {}
            '(' => {
                let mut depth = 1;
                while depth > 0 {
                    match chars.next().ok_or("an unclosed comment")?.1 {
                        '\\' => {
                            chars.next();
                        }
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                }
            }
            '"' => {
                loop {
                    match chars.next().ok_or("an unclosed quoted string")?.1 {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                tokens.push(Token::Quoted);
            }
            '[' => {
                let start = at + 1;
                let end = loop {
                    match chars.next().ok_or("an unclosed domain literal")? {
                        (end, ']') => break end,
                        (_, '[' | '\\') => return Err("'[' or '\\' inside a domain literal".into()),
                        _ => {}
                    }
                };
                tokens.push(Token::Literal(&text[start..end]));
            }
            '<' | '>' | '@' | ',' | ';' | ':' | '.' => tokens.push(Token::Special(c as u8)),
            ')' | ']' | '\\' => return Err(format!("a stray '{c}'")),
            c if c.is_control() => return Err(format!("control character {:#04x}", c as u32)),
            _ => {
                let mut end = at + c.len_utf8();
                while let Some(&(next_at, n)) = chars.peek() {
                    if n.is_whitespace() || n.is_control() || "()<>[]:;@\\,.\"".contains(n) {
                        break;
                    }
                    end = next_at + n.len_utf8();
                    chars.next();
                }
                tokens.push(Token::Atom(&text[at..end]));
            }
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains(value: &str) -> Result<Vec<String>, BadFrom> {
        author_domains(&[value.as_bytes()])
    }

    fn ok(value: &str) -> Vec<String> {
        domains(value).unwrap_or_else(|e| panic!("{value:?}: {e}"))
    }

    #[test]
    fn rfc_5322_appendix_a_forms() {
        assert_eq!(ok(" John Doe <jdoe@machine.example>"), ["machine.example"]);
        assert_eq!(
            ok(" \"Joe Q. Public\" <john.q.public@Example.COM>"),
            ["example.com"]
        );
        assert_eq!(
            ok(" Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>"),
            ["silly.test"]
        );
        assert_eq!(
            ok(" jdoe@example.org, Who? <one@y.test>"),
            ["example.org", "y.test"]
        );
        assert_eq!(
            ok(" A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one1.test>;"),
            ["a.test", "where.test", "one1.test"]
        );
        assert_eq!(
            ok(" \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>"),
            ["example.net"]
        );
        assert_eq!(ok(" <@route.example:user@example.com>"), ["example.com"]);
        assert!(matches!(
            domains(" user@[192.0.2.1]"),
            Err(BadFrom::NoDomain(_))
        ));
        let long = format!(" user@{}.example.com", "a".repeat(64));
        assert!(matches!(domains(&long), Err(BadFrom::NoDomain(_))));
    }

    #[test]
    fn obsolete_whitespace_around_at_and_dots() {
        assert_eq!(ok(" <marc@ marcbradshaw.net>"), ["marcbradshaw.net"]);
        assert_eq!(ok(" marc . bradshaw @ example . net"), ["example.net"]);
        assert_eq!(ok(" a@x.test, , b@x.test"), ["x.test"]);
    }

    #[test]
    fn several_fields_give_every_domain_once() {
        let fields: [&[u8]; 2] = [b" a@one.test", b" b@two.test, c@one.test"];
        assert_eq!(
            author_domains(&fields).expect("parse"),
            ["one.test", "two.test"]
        );
    }

    #[test]
    fn unparseable_or_empty_from_is_an_error() {
        assert_eq!(author_domains(&[]), Err(BadFrom::Missing));
        for bad in [
            " \"Dear Customer\n Happy new Year",
            " Dear Customer",
            " undisclosed-recipients:;",
            " <a@example.com",
            " a@",
            " a@example.com.",
            " @example.com",
            " a@exa mple.com",
            " (unclosed a@example.com",
            " a@b@example.com",
            " Name <a@example.com> trailing",
            " paypal.com <a@evil.test>",
        ] {
            assert!(
                domains(bad).is_err() || bad.contains("paypal"),
                "{bad:?} parsed"
            );
        }
        // A display name that looks like a domain is just a name.
        assert_eq!(ok(" paypal.com <a@evil.test>"), ["evil.test"]);
    }
}
