//! The one writer of header values we add or change: our `Authentication-Results`,
//! the rules' `add_header`/`set_header`, and any other. It folds between words so
//! that no line passes 78 characters (RFC 5322 §2.1.1), joining lines with LF and
//! whitespace as milter edits carry them (the MTA writes the CR).

/// The longest header line we write before folding.
pub const FOLD_AT: usize = 78;

/// A header value being written, and the length of its current line.
pub struct HeaderValue {
    out: String,
    line_len: usize,
}

impl HeaderValue {
    /// A value for header `name`; its first line already holds `Name: `.
    pub fn for_header(name: &str) -> Self {
        HeaderValue {
            out: String::new(),
            line_len: name.len() + 2,
        }
    }

    /// Appends text as it is, on the current line.
    pub fn push(&mut self, text: &str) {
        self.out.push_str(text);
        self.line_len += text.len();
    }

    /// Starts a continuation line with `indent`, which is `width` columns wide.
    pub fn new_line(&mut self, indent: &str, width: usize) {
        self.out.push('\n');
        self.out.push_str(indent);
        self.line_len = width;
    }

    /// Appends words separated by spaces; a word that would pass [`FOLD_AT`] starts a
    /// continuation line with `indent` (`width` columns) instead.
    pub fn words<'w>(
        &mut self,
        words: impl IntoIterator<Item = &'w str>,
        indent: &str,
        width: usize,
    ) {
        for (i, word) in words.into_iter().enumerate() {
            if i > 0 {
                if self.line_len + 1 + word.len() > FOLD_AT {
                    self.new_line(indent, width);
                } else {
                    self.push(" ");
                }
            }
            self.push(word);
        }
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// `value` for header `name`, folded at spaces with a tab.
pub fn fold(name: &str, value: &str) -> String {
    let mut v = HeaderValue::for_header(name);
    v.words(value.split(' '), "\t", 1);
    v.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_line_passes_78_unless_one_word_is_longer() {
        let value = "word ".repeat(40);
        let folded = fold("Subject", value.trim());
        let lines: Vec<&str> = folded.split('\n').collect();
        assert!(lines.len() > 1);
        assert!("Subject: ".len() + lines[0].len() <= FOLD_AT);
        assert!(
            lines[1..]
                .iter()
                .all(|l| l.starts_with('\t') && l.len() <= FOLD_AT)
        );
        assert_eq!(folded.replace("\n\t", " "), value.trim());
        let long = "x".repeat(100);
        assert_eq!(fold("X", &long), long);
    }
}
