//! Validated newtypes. Each `parse` trims where the protocol says so and explains what is wrong.

use std::fmt;

/// Why a value was refused, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    pub field: &'static str,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self { field, reason: reason.into() }
    }
}

/// Characters that change how the text around them is drawn without being seen themselves:
/// bidirectional overrides, embeddings and isolates (U+202E shows "gnp.exe" as "exe.png"),
/// zero-width spaces and joiners, the word joiner and invisible operators, the byte-order mark.
pub fn is_invisible_control(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// Drops [`is_invisible_control`] characters: names are for reading, and these only mislead.
pub fn without_invisible_controls(raw: &str) -> String {
    raw.chars().filter(|c| !is_invisible_control(*c)).collect()
}

fn trimmed_len_between(field: &'static str, raw: &str, min: usize, max: usize) -> Result<String, Invalid> {
    let value = raw.trim();
    let len = value.chars().count();
    if len < min {
        return Err(Invalid::new(
            field,
            if min == 1 { "must not be empty".into() } else { format!("must be at least {min} characters") },
        ));
    }
    if len > max {
        return Err(Invalid::new(field, format!("must be at most {max} characters (got {len})")));
    }
    Ok(value.to_owned())
}

macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident, $field:literal, $min:expr, $max:expr) => {
        text_newtype!($(#[$doc])* $name, $field, $min, $max, |raw: &str| raw.to_owned());
    };
    ($(#[$doc:meta])* $name:ident, $field:literal, $min:expr, $max:expr, $clean:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(raw: &str) -> Result<Self, Invalid> {
                let clean: fn(&str) -> String = $clean;
                trimmed_len_between($field, &clean(raw), $min, $max).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

text_newtype!(
    /// A chat message body: 1 to 4,000 characters after trimming.
    MessageBody, "body", 1, 4000
);
text_newtype!(
    /// A room name: 1 to 80 characters after trimming, without invisible or bidi controls.
    RoomName, "name", 1, 80, without_invisible_controls
);
text_newtype!(
    /// What other people see: 1 to 60 characters after trimming, without invisible or bidi
    /// controls.
    DisplayName, "display_name", 1, 60, without_invisible_controls
);
text_newtype!(
    /// The client's own id for a message it sends, echoed in `ack` and used to drop resends.
    ClientMsgId, "client_msg_id", 1, 100
);

/// An e-mail address, stored lower-cased. Only the shape is checked; nobody is mailed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let value = raw.trim().to_lowercase();
        let invalid = || Invalid::new("email", "must be an e-mail address like ana@example.com");
        if value.len() > 254 || value.chars().any(char::is_whitespace) {
            return Err(invalid());
        }
        let (local, domain) = value.split_once('@').ok_or_else(invalid)?;
        if local.is_empty() || domain.len() < 3 || !domain.contains('.') || domain.contains('@') {
            return Err(invalid());
        }
        if domain.starts_with('.') || domain.ends_with('.') {
            return Err(invalid());
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password as typed; never logged (its `Debug` is redacted).
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 256;
    /// zxcvbn's "somewhat guessable" (about 10^8 guesses) or better.
    pub const MIN_SCORE: zxcvbn::Score = zxcvbn::Score::Two;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let len = raw.chars().count();
        if len < Self::MIN_CHARS {
            return Err(Invalid::new("password", format!("must be at least {} characters", Self::MIN_CHARS)));
        }
        if len > Self::MAX_CHARS {
            return Err(Invalid::new("password", format!("must be at most {} characters", Self::MAX_CHARS)));
        }
        // zxcvbn knows the common passwords, names, keyboard walks and repeats; below this score
        // a password falls to an online guessing attack in well under a million tries.
        let guessable = zxcvbn::zxcvbn(raw, &[]).score() < Self::MIN_SCORE;
        if guessable {
            return Err(Invalid::new(
                "password",
                "is too common or easy to guess: use a longer phrase of unrelated words",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A WebSocket connection id, as API Gateway names them (opaque, URL-safe).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(String);

impl ConnectionId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// A fresh id in API Gateway's style (base64 of 12 random bytes).
    pub fn generate() -> Self {
        use base64::Engine;
        let bytes: [u8; 12] = rand::random();
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_trimmed_and_bounded_in_characters() {
        assert_eq!(MessageBody::parse("  hi  ").unwrap().as_str(), "hi");
        assert!(MessageBody::parse("   ").is_err());
        assert!(MessageBody::parse(&"é".repeat(4000)).is_ok());
        let err = MessageBody::parse(&"a".repeat(4001)).unwrap_err();
        assert_eq!(err.field, "body");
    }

    #[test]
    fn emails_are_lowercased_and_shaped() {
        assert_eq!(Email::parse(" Ana@Example.COM ").unwrap().as_str(), "ana@example.com");
        for bad in ["", "ana", "ana@", "@example.com", "ana@com", "a b@example.com", "ana@.com"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn password_debug_is_redacted() {
        let p = Password::parse("correct horse").unwrap();
        assert!(!format!("{p:?}").contains("horse"));
        assert!(Password::parse("short").is_err());
    }

    #[test]
    fn common_passwords_are_refused_naming_the_field() {
        for weak in ["12345678", "password", "password1", "qwertyuiop", "iloveyou", "11111111"] {
            let err = Password::parse(weak).expect_err(weak);
            assert_eq!(err.field, "password", "{weak}");
            assert!(err.reason.contains("common") || err.reason.contains("guess"), "{weak}: {}", err.reason);
        }
        for fine in [
            "correct horse battery",
            "another password",
            "whatever it is",
            "pw-ana-1234-correct-horse",
            "bench-password-1234",
        ] {
            assert!(Password::parse(fine).is_ok(), "{fine}");
        }
    }

    #[test]
    fn names_lose_bidi_and_invisible_characters() {
        let tricky = "Ana\u{202E}gnp.exe\u{200B}\u{FEFF}\u{2066}\u{2069}\u{200D}\u{061C}\u{2060}";
        assert_eq!(DisplayName::parse(tricky).unwrap().as_str(), "Anagnp.exe");
        assert_eq!(RoomName::parse("\u{202A}plans\u{202C}").unwrap().as_str(), "plans");
        // Only invisible characters: nothing is left to show.
        assert_eq!(DisplayName::parse("\u{200B}\u{202E}").unwrap_err().field, "display_name");
        // Emoji sequences keep working (a zero-width joiner inside one is neutralised, not refused).
        assert_eq!(DisplayName::parse("Zoë 🎉").unwrap().as_str(), "Zoë 🎉");
    }
}

/// Someone's role in a workspace (`workspace_members.role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Created the workspace: moderates its rooms and moves its money.
    Owner,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Member => "member",
        }
    }

    /// A stored role; anything unknown counts as the least one.
    pub fn from_stored(role: &str) -> Self {
        if role == "owner" { Self::Owner } else { Self::Member }
    }
}
