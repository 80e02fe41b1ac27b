//! The words of a message as search sees them: Unicode-lowercased, split on everything that is
//! not a letter or a digit, distinct, without one-letter words and the most common English
//! words (they would match most of a room and say little). Both the index (`keyring::blind_index`
//! hashes each term) and a query go through [`terms`], so they agree on what a word is.

use std::collections::BTreeSet;

use super::Invalid;

/// Terms of fewer characters are not indexed.
pub const MIN_TERM_CHARS: usize = 2;
/// Longer words are cut to this many characters (a query word is cut the same way).
pub const MAX_TERM_CHARS: usize = 64;
/// How many distinct terms of one message are indexed (a 4,000-character body rarely has more).
pub const MAX_TERMS_PER_MESSAGE: usize = 1000;
/// A query's limits.
pub const MAX_QUERY_CHARS: usize = 200;
pub const MAX_QUERY_TERMS: usize = 8;

/// Words too common to narrow a search down.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "do", "for", "from", "has", "have", "he", "her", "his",
    "i", "if", "in", "is", "it", "its", "me", "my", "no", "not", "of", "on", "or", "our", "she", "so", "that", "the",
    "their", "them", "then", "there", "they", "this", "to", "was", "we", "were", "will", "with", "you", "your",
];

fn is_stop_word(term: &str) -> bool {
    STOP_WORDS.binary_search(&term).is_ok()
}

/// The distinct searchable terms of a text, in no meaningful order (a set: where a word stood is
/// not kept).
pub fn terms(text: &str) -> BTreeSet<String> {
    let lower = text.to_lowercase();
    let mut out = BTreeSet::new();
    for word in lower.split(|c: char| !c.is_alphanumeric()) {
        let chars = word.chars().count();
        if chars < MIN_TERM_CHARS || is_stop_word(word) {
            continue;
        }
        let term = if chars > MAX_TERM_CHARS { word.chars().take(MAX_TERM_CHARS).collect() } else { word.to_owned() };
        out.insert(term);
        if out.len() == MAX_TERMS_PER_MESSAGE {
            break;
        }
    }
    out
}

/// A search query: the terms every result must contain (AND).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    terms: Vec<String>,
}

impl SearchQuery {
    pub fn parse(q: &str) -> Result<Self, Invalid> {
        let q = q.trim();
        if q.is_empty() {
            return Err(Invalid::new("q", "q: type something to search for"));
        }
        if q.chars().count() > MAX_QUERY_CHARS {
            return Err(Invalid::new("q", format!("q: at most {MAX_QUERY_CHARS} characters")));
        }
        let terms: Vec<String> = terms(q).into_iter().collect();
        if terms.is_empty() {
            return Err(Invalid::new(
                "q",
                "q: no searchable word (words of two letters or more, not the most common ones)",
            ));
        }
        if terms.len() > MAX_QUERY_TERMS {
            return Err(Invalid::new("q", format!("q: at most {MAX_QUERY_TERMS} words")));
        }
        Ok(Self { terms })
    }

    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    /// Whether a body holds every term: what a candidate from the index is checked against once
    /// decrypted (a truncated hash can collide).
    pub fn matches(&self, body: &str) -> bool {
        let have = terms(body);
        self.terms.iter().all(|t| have.contains(t))
    }

    /// A short piece of `body` around the first word that matches a term: at most
    /// [`EXCERPT_CHARS`] characters, with `…` where it was cut.
    pub fn excerpt(&self, body: &str) -> String {
        let chars: Vec<char> = body.chars().collect();
        let mut hit = 0;
        let mut i = 0;
        while i < chars.len() {
            if !chars[i].is_alphanumeric() {
                i += 1;
                continue;
            }
            let start = i;
            while i < chars.len() && chars[i].is_alphanumeric() {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect::<String>().to_lowercase();
            let word: String = word.chars().take(MAX_TERM_CHARS).collect();
            if self.terms.contains(&word) {
                hit = start;
                break;
            }
        }
        let from = hit.saturating_sub(EXCERPT_CHARS / 3);
        let to = (from + EXCERPT_CHARS).min(chars.len());
        let from = to.saturating_sub(EXCERPT_CHARS);
        let mut out = String::new();
        if from > 0 {
            out.push('…');
        }
        out.extend(chars[from..to].iter().map(|&c| if c == '\n' { ' ' } else { c }));
        if to < chars.len() {
            out.push('…');
        }
        out
    }
}

/// How long a search result's excerpt is, in characters.
pub const EXCERPT_CHARS: usize = 160;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_are_sorted_for_binary_search() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn terms_ignore_case_punctuation_order_and_repeats() {
        let t = terms("Launch: the LAUNCH-plan, über Café! 2026 a");
        let got: Vec<&str> = t.iter().map(String::as_str).collect();
        assert_eq!(got, vec!["2026", "café", "launch", "plan", "über"]);
    }

    #[test]
    fn a_query_needs_a_searchable_word() {
        assert!(SearchQuery::parse("  ").is_err());
        assert!(SearchQuery::parse("the a, of!").is_err());
        assert!(SearchQuery::parse(&"x".repeat(MAX_QUERY_CHARS + 1)).is_err());
        assert!(SearchQuery::parse("a1 b2 c3 d4 e5 f6 g7 h8 i9").is_err());
        let q = SearchQuery::parse("Budget, REVIEW").unwrap();
        assert_eq!(q.terms(), ["budget", "review"]);
        assert!(q.matches("the review of the budget."));
        assert!(!q.matches("the budget"));
    }

    #[test]
    fn the_excerpt_shows_the_matching_word() {
        let q = SearchQuery::parse("needle").unwrap();
        let body = format!("{} the Needle! {}", "hay ".repeat(100), "straw ".repeat(100));
        let e = q.excerpt(&body);
        assert!(e.contains("Needle"), "{e}");
        assert!(e.starts_with('…') && e.ends_with('…'));
        assert!(e.chars().count() <= EXCERPT_CHARS + 2);
        assert_eq!(q.excerpt("short needle"), "short needle");
    }

    #[test]
    fn long_words_are_cut_alike_in_text_and_query() {
        let long = "x".repeat(100);
        let q = SearchQuery::parse(&long).unwrap();
        assert!(q.matches(&format!("see {long}!")));
        assert_eq!(q.terms()[0].chars().count(), MAX_TERM_CHARS);
    }
}
