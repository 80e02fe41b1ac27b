//! Reminders from plain language: "remind me to call John in 10 mins", "… at 5pm",
//! "… tomorrow at 9am", "… next Monday at 10", "… on Dec 3 at 14:30" — in the person's own
//! timezone. The date parsing is `interim`'s; this module only finds the time phrase, puts it in
//! the form `interim` reads, and refuses what it cannot be sure of.

use std::sync::LazyLock;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use interim::{Dialect, parse_date_string};
use regex::Regex;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub text: String,
    pub due_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("I couldn't find a time in that. Try `remind me to stretch in 10 mins` or `… tomorrow at 9am`.")]
    NoTime,
    #[error("What should I remind you of? Try `remind me to call John in 10 mins`.")]
    NoText,
    #[error("{0} has already passed — tell me a time in the future.")]
    Past(String),
    /// A date or time that does not exist ("Feb 30", "99:00"): refused, never moved elsewhere.
    #[error("I can't find {0} on the calendar or the clock — check the date and time and ask again.")]
    Impossible(String),
}

static LEAD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^.*?\b(?:remind\s+(?:me|us)|set\s+an?\s+reminder|reminder)\b\s*(?:(?:to|about|that|for|of)\b)?\s*")
        .expect("regex")
});
/// A word a time phrase can start with (a whole word: "online" or "attend" are not "on" or "at").
static TIME_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(in|at|on|by|tomorrow|today|tonight|next|this|noon|monday|tuesday|wednesday|thursday|friday|saturday|sunday|\d[\d:.]*(am|pm)?)[,.!?]?$",
    )
    .expect("regex")
});

/// Puts a time phrase in `interim`'s words: "in 10 mins" → "10 minutes", "tomorrow at 9am" →
/// "tomorrow 9am", "next monday at 10" → "next monday 10:00", "on dec 3 at 14:30" → "dec 3 14:30".
fn normalise(phrase: &str) -> String {
    static IN: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^in\s+(an?|\d+)\s*(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?)$")
            .expect("regex")
    });
    static BARE_HOUR: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b(\d{1,2})$").expect("regex"));
    let mut p = phrase.trim().trim_end_matches(['.', '!', '?', ',', ';']).to_lowercase();
    if let Some(c) = IN.captures(&p) {
        let n = if c[1].starts_with('a') { "1".to_owned() } else { c[1].to_owned() };
        let unit = match &c[2][..1] {
            "s" => "seconds",
            "m" => "minutes",
            "h" => "hours",
            "d" => "days",
            _ => "weeks",
        };
        return format!("{n} {unit}");
    }
    p = p.replace("tonight", "today 8pm");
    static NOON: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bnoon\b").expect("regex"));
    p = NOON.replace_all(&p, "12:00").into_owned();
    for word in [" at ", " on "] {
        p = p.replace(word, " ");
    }
    for lead in ["at ", "on ", "by "] {
        if let Some(rest) = p.strip_prefix(lead) {
            p = rest.to_owned();
        }
    }
    // "next monday 10" means 10 o'clock.
    if p.split_whitespace().count() > 1 {
        p = BARE_HOUR.replace(&p, "$1:00").into_owned();
    } else if p.chars().all(|c| c.is_ascii_digit()) {
        p = format!("{p}:00");
    }
    p
}

const MONTHS: [(&str, u32); 12] = [
    ("Jan", 31),
    ("Feb", 29),
    ("Mar", 31),
    ("Apr", 30),
    ("May", 31),
    ("Jun", 30),
    ("Jul", 31),
    ("Aug", 31),
    ("Sep", 30),
    ("Oct", 31),
    ("Nov", 30),
    ("Dec", 31),
];

fn month_index(word: &str) -> Option<usize> {
    let w = word.to_lowercase();
    let w = if w == "sept" { "sep".to_owned() } else { w };
    MONTHS.iter().position(|(m, _)| w.starts_with(&m.to_lowercase()))
}

/// A date or clock time in the request that cannot exist: `interim` would fail on it and the
/// search would then settle for a shorter phrase ("feb 30 at 10" → "at 10", today), so such a
/// request is refused before anything is looked for.
fn impossible(request: &str) -> Option<String> {
    const MONTH: &str = r"(jan|january|feb|february|mar|march|apr|april|may|jun|june|jul|july|aug|august|sep|sept|september|oct|october|nov|november|dec|december)";
    static MONTH_DAY: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(&format!(r"(?i)\b{MONTH}\.?\s+(\d{{1,3}})(?:st|nd|rd|th)?\b")).expect("regex"));
    static DAY_MONTH: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(&format!(r"(?i)\b(\d{{1,3}})(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTH}\b")).expect("regex")
    });
    static CLOCK: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)\b(\d{1,3}):(\d{1,3})\s*(am|pm)?\b").expect("regex"));
    static HOUR_AMPM: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)\b(\d{1,3})\s*(am|pm)\b").expect("regex"));
    // "at 99" at the end, or before a day: an hour, not "look at 99 problems".
    static AT_HOUR: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\bat\s+(\d{1,3})\s*(?:[.!?,]?\s*$|\s+(?:today|tomorrow|tonight|on|next|this|mon|tue|wed|thu|fri|sat|sun)[a-z]*\b)")
            .expect("regex")
    });
    let check_day = |month: &str, day: &str| {
        let (name, max) = MONTHS[month_index(month)?];
        let d: u32 = day.parse().ok()?;
        (d == 0 || d > max).then(|| format!("{name} {d}"))
    };
    for c in MONTH_DAY.captures_iter(request) {
        if let Some(bad) = check_day(&c[1], &c[2]) {
            return Some(bad);
        }
    }
    for c in DAY_MONTH.captures_iter(request) {
        if let Some(bad) = check_day(&c[2], &c[1]) {
            return Some(bad);
        }
    }
    let hour_ok = |h: u32, ampm: Option<&str>| if ampm.is_some() { (1..=12).contains(&h) } else { h <= 23 };
    for c in CLOCK.captures_iter(request) {
        let (h, m): (u32, u32) = (c[1].parse().ok()?, c[2].parse().ok()?);
        let ampm = c.get(3).map(|a| a.as_str().to_lowercase());
        if !hour_ok(h, ampm.as_deref()) || m > 59 || c[2].len() != 2 {
            return Some(format!("{}:{}{}", &c[1], &c[2], ampm.unwrap_or_default()));
        }
    }
    for c in HOUR_AMPM.captures_iter(request) {
        let h: u32 = c[1].parse().ok()?;
        let ampm = c[2].to_lowercase();
        if !hour_ok(h, Some(&ampm)) {
            return Some(format!("{h}{ampm}"));
        }
    }
    for c in AT_HOUR.captures_iter(request) {
        let h: u32 = c[1].parse().ok()?;
        if h > 23 {
            return Some(format!("{h}:00"));
        }
    }
    None
}

fn parse_phrase(phrase: &str, now: DateTime<Tz>) -> Option<DateTime<Tz>> {
    let normal = normalise(phrase);
    if normal.is_empty() {
        return None;
    }
    parse_date_string(&normal, now, Dialect::Us).ok()
}

/// A time phrase `interim` reads in full: `interim` stops at the first word it does not know
/// ("5pm to check emails" reads as 5pm), so a phrase whose last word changes nothing is not one.
fn parse_span(span: &[&str], now: DateTime<Tz>) -> Option<DateTime<Tz>> {
    let first = span.first()?;
    if !TIME_WORD.is_match(first) {
        return None;
    }
    // A bare number ("chapter 10", "buy 3 eggs at 5pm") does not start a time; "at 10" does.
    if first.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let at = parse_phrase(&span.join(" "), now)?;
    if span.len() > 1 && parse_phrase(&span[..span.len() - 1].join(" "), now) == Some(at) {
        return None;
    }
    Some(at)
}

/// The time phrase at the end ("… tomorrow at 9am") or at the start ("at 5pm to check
/// emails") of the request, the longest one first (at the end on a tie), and the words left.
fn find_time(words: &[&str], now: DateTime<Tz>) -> Option<(String, DateTime<Tz>)> {
    let n = words.len();
    for len in (1..=n).rev() {
        if let Some(at) = parse_span(&words[n - len..], now) {
            return Some((words[..n - len].join(" "), at));
        }
        if let Some(at) = parse_span(&words[..len], now) {
            return Some((words[len..].join(" "), at));
        }
    }
    None
}

/// The task without the words that tied it to the time: "to check emails" → "check emails".
fn task_text(text: &str) -> String {
    let mut t = text.trim().trim_end_matches([',', '.', ';']).trim();
    loop {
        let before = t;
        t = t.trim_start_matches([',', ';', ':', '-']).trim_start();
        for lead in ["to ", "about ", "that ", "of "] {
            if t.get(..lead.len()).is_some_and(|head| head.eq_ignore_ascii_case(lead)) {
                t = t[lead.len()..].trim_start();
            }
        }
        if t == before {
            break;
        }
    }
    // A connector with nothing after it ("… at 9am to") is no task.
    if ["to", "about", "that", "of"].iter().any(|w| t.eq_ignore_ascii_case(w)) {
        return String::new();
    }
    t.to_owned()
}

/// Parses a reminder request at `now` in `tz`.
pub fn parse(request: &str, tz: Tz, now: DateTime<Utc>) -> Result<Parsed, ParseError> {
    let rest = LEAD.replace(request.trim(), "").trim().to_owned();
    if let Some(what) = impossible(&rest) {
        return Err(ParseError::Impossible(what));
    }
    let local_now = tz.from_utc_datetime(&now.naive_utc());
    let words: Vec<&str> = rest.split_whitespace().collect();
    let (text, at) = find_time(&words, local_now).ok_or(ParseError::NoTime)?;
    let text = task_text(&text);
    if text.is_empty() || text.eq_ignore_ascii_case("me") {
        return Err(ParseError::NoText);
    }
    in_future(text, at, now)
}

/// A reminder given as its two parts (the HTTP API, the client's `/remind` and "Remind me
/// about this"): `when` must be a time phrase and nothing else, `text` the task.
pub fn parse_parts(text: &str, when: &str, tz: Tz, now: DateTime<Utc>) -> Result<Parsed, ParseError> {
    if let Some(what) = impossible(when) {
        return Err(ParseError::Impossible(what));
    }
    let words: Vec<&str> = when.split_whitespace().collect();
    let at = parse_span(&words, tz.from_utc_datetime(&now.naive_utc())).ok_or(ParseError::NoTime)?;
    let text = task_text(text);
    if text.is_empty() {
        return Err(ParseError::NoText);
    }
    in_future(text, at, now)
}

fn in_future(text: String, at: DateTime<Tz>, now: DateTime<Utc>) -> Result<Parsed, ParseError> {
    let due_at = at.with_timezone(&Utc);
    if due_at <= now {
        return Err(ParseError::Past(at.format("%A %-d %B at %H:%M").to_string()));
    }
    Ok(Parsed { text, due_at })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn phrasings_and_timezones_give_the_exact_instant() {
        // Wednesday 25 November 2026, 13:00 UTC.
        let now = utc(2026, 11, 25, 13, 0);
        let paris: Tz = "Europe/Paris".parse().unwrap(); // UTC+1
        let ny: Tz = "America/New_York".parse().unwrap(); // UTC-5
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap(); // UTC+9 (already 22:00 there)
        let table = [
            ("remind me to call John in 10 mins", paris, "call John", utc(2026, 11, 25, 13, 10)),
            ("remind me to stretch in 2 hours", ny, "stretch", utc(2026, 11, 25, 15, 0)),
            ("remind me in 45 minutes to check the oven", tokyo, "check the oven", utc(2026, 11, 25, 13, 45)),
            ("remind me to leave at 5pm", paris, "leave", utc(2026, 11, 25, 16, 0)),
            ("remind me to leave at 5pm", ny, "leave", utc(2026, 11, 25, 22, 0)),
            ("remind me to review the PR tomorrow at 9am", paris, "review the PR", utc(2026, 11, 26, 8, 0)),
            ("remind me to review the PR tomorrow at 9am", tokyo, "review the PR", utc(2026, 11, 26, 0, 0)),
            ("remind us about the retro next Monday at 10", ny, "the retro", utc(2026, 11, 30, 15, 0)),
            ("remind me to pay rent on Dec 3 at 14:30", paris, "pay rent", utc(2026, 12, 3, 13, 30)),
            ("remind me to pay rent on Dec 3 at 14:30", ny, "pay rent", utc(2026, 12, 3, 19, 30)),
        ];
        for (request, tz, text, due) in table {
            let parsed = parse(request, tz, now).unwrap_or_else(|e| panic!("{request} ({tz}): {e}"));
            assert_eq!(parsed, Parsed { text: text.into(), due_at: due }, "{request} ({tz})");
        }
    }

    #[test]
    fn a_dst_boundary_moves_the_utc_instant() {
        // New York springs forward on Sunday 8 March 2026: 9am is 14:00 UTC before, 13:00 after.
        let ny: Tz = "America/New_York".parse().unwrap();
        let saturday = utc(2026, 3, 7, 15, 0);
        assert_eq!(parse("remind me to jog tomorrow at 9am", ny, saturday).unwrap().due_at, utc(2026, 3, 8, 13, 0));
        let friday = utc(2026, 3, 6, 15, 0);
        assert_eq!(parse("remind me to jog tomorrow at 9am", ny, friday).unwrap().due_at, utc(2026, 3, 7, 14, 0));
        // Paris falls back on 25 October 2026: 9am is 07:00 UTC before, 08:00 after.
        let paris: Tz = "Europe/Paris".parse().unwrap();
        assert_eq!(
            parse("remind me to jog tomorrow at 9am", paris, utc(2026, 10, 25, 12, 0)).unwrap().due_at,
            utc(2026, 10, 26, 8, 0)
        );
    }

    #[test]
    fn past_or_unparseable_times_are_refused_not_guessed() {
        let now = utc(2026, 11, 25, 18, 0);
        let utc_tz: Tz = "UTC".parse().unwrap();
        assert!(matches!(parse("remind me to leave at 5pm", utc_tz, now), Err(ParseError::Past(_))));
        assert_eq!(parse("remind me to call John sometime", utc_tz, now), Err(ParseError::NoTime));
        assert_eq!(parse("remind me in 10 mins", utc_tz, now), Err(ParseError::NoText));
    }

    #[test]
    fn impossible_dates_and_times_are_refused_not_moved() {
        let now = utc(2026, 11, 25, 13, 0);
        let utc_tz: Tz = "UTC".parse().unwrap();
        for (request, what) in [
            ("remind me to pay rent on feb 30 at 10", "Feb 30"),
            ("remind me to pay rent on Feb 31", "Feb 31"),
            ("remind me to pay rent on april 31 at 9am", "Apr 31"),
            ("remind me to pay rent on 31 june at 9am", "Jun 31"),
            ("remind me to call Bob next monday at 99", "99:00"),
            ("remind me to call Bob at 25:00", "25:00"),
            ("remind me to call Bob tomorrow at 10:75", "10:75"),
            ("remind me to call Bob at 13pm", "13pm"),
            ("remind me to call Bob at 0am", "0am"),
        ] {
            match parse(request, utc_tz, now) {
                Err(ParseError::Impossible(found)) => assert_eq!(found, what, "{request}"),
                other => panic!("{request}: {other:?}"),
            }
        }
        let message = ParseError::Impossible("Feb 30".into()).to_string();
        assert!(message.starts_with("I can't find Feb 30"), "{message}");
        // Real dates and times still work, and numbers in the text are not times.
        assert_eq!(
            parse("remind me to pay rent on dec 31 at 10", utc_tz, now).unwrap().due_at,
            utc(2026, 12, 31, 10, 0)
        );
        assert_eq!(parse("remind me to buy 99 eggs at 5pm", utc_tz, now).unwrap().text, "buy 99 eggs");
        assert_eq!(parse("remind me to call Bob at 11pm", utc_tz, now).unwrap().due_at, utc(2026, 11, 25, 23, 0));
    }

    #[test]
    fn the_time_may_come_first_or_last() {
        // Wednesday 25 November 2026, 08:00 UTC.
        let now = utc(2026, 11, 25, 8, 0);
        let paris: Tz = "Europe/Paris".parse().unwrap(); // UTC+1
        let table = [
            ("in 10 mins", utc(2026, 11, 25, 8, 10)),
            ("at 5pm", utc(2026, 11, 25, 16, 0)),
            ("tomorrow at 9", utc(2026, 11, 26, 8, 0)),
            ("tomorrow at 9am", utc(2026, 11, 26, 8, 0)),
            ("on Friday", utc(2026, 11, 26, 23, 0)),
            ("next Monday at 10:30", utc(2026, 11, 30, 9, 30)),
            ("at noon", utc(2026, 11, 25, 11, 0)),
            ("tomorrow at noon", utc(2026, 11, 26, 11, 0)),
        ];
        for (phrase, due) in table {
            for request in [
                format!("remind me to check emails {phrase}"),
                format!("remind me {phrase} to check emails"),
                format!("@mathia Remind me {phrase}, check emails"),
            ] {
                let parsed = parse(&request, paris, now).unwrap_or_else(|e| panic!("{request}: {e}"));
                assert_eq!(parsed, Parsed { text: "check emails".into(), due_at: due }, "{request}");
            }
        }
        let deck = parse("remind me tomorrow at 9am to send the deck", paris, now).unwrap();
        assert_eq!(deck, Parsed { text: "send the deck".into(), due_at: utc(2026, 11, 26, 8, 0) });
        // Numbers and time-like words inside the task stay in the task.
        let chapter = parse("remind me at 5pm to read chapter 10", paris, now).unwrap();
        assert_eq!(chapter, Parsed { text: "read chapter 10".into(), due_at: utc(2026, 11, 25, 16, 0) });
        let online = parse("remind me at 5pm to attend the online demo", paris, now).unwrap();
        assert_eq!(online.text, "attend the online demo");
    }

    #[test]
    fn time_first_keeps_the_refusals() {
        let now = utc(2026, 11, 25, 18, 0);
        let utc_tz: Tz = "UTC".parse().unwrap();
        assert!(matches!(parse("remind me at 5pm to leave", utc_tz, now), Err(ParseError::Past(_))));
        assert_eq!(parse("remind me at 5pm", utc_tz, now - chrono::Duration::hours(6)), Err(ParseError::NoText));
        assert_eq!(parse("remind me tomorrow at 9am to", utc_tz, now), Err(ParseError::NoText));
        assert_eq!(parse("remind me sometime to call John", utc_tz, now), Err(ParseError::NoTime));
        assert!(matches!(parse("remind me on feb 30 at 10 to pay rent", utc_tz, now), Err(ParseError::Impossible(_))));
        assert!(matches!(parse("remind me at 25:00 to call Bob", utc_tz, now), Err(ParseError::Impossible(_))));
    }

    #[test]
    fn parts_read_the_same_phrases() {
        let now = utc(2026, 11, 25, 8, 0);
        let utc_tz: Tz = "UTC".parse().unwrap();
        let parsed = parse_parts("check emails", "tomorrow at 9am", utc_tz, now).unwrap();
        assert_eq!(parsed, Parsed { text: "check emails".into(), due_at: utc(2026, 11, 26, 9, 0) });
        assert_eq!(parse_parts("x", "in 1 hour", utc_tz, now).unwrap().due_at, utc(2026, 11, 25, 9, 0));
        assert_eq!(parse_parts("x", "tomorrow at 9am please", utc_tz, now), Err(ParseError::NoTime));
        assert_eq!(parse_parts("x", "soon", utc_tz, now), Err(ParseError::NoTime));
        assert_eq!(parse_parts("  ", "in 1 hour", utc_tz, now), Err(ParseError::NoText));
        assert!(matches!(parse_parts("x", "at 7am", utc_tz, now), Err(ParseError::Past(_))));
        assert!(matches!(parse_parts("x", "on feb 30", utc_tz, now), Err(ParseError::Impossible(_))));
    }
}
