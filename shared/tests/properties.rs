//! Property tests over everything that reads untrusted text before a database is touched:
//! WebSocket frame parsing, the validated newtypes, the reminder phrase parser, moderation and
//! the assistant's intent router. None may panic, whatever comes in, and what they accept keeps
//! its invariants. Bounded (a few hundred cases each) so `.ci/run` runs them on every change.

use chrono::{TimeZone, Utc};
use mathia::{
    domain::{ClientMsgId, DisplayName, Email, MessageBody, Password, RoomName, is_invisible_control},
    protocol::{ACTIONS, ClientAction, MAX_FRAME_BYTES, ServerEvent, WsErrorCode, parse_frame},
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const FIELDS: &[&str] =
    &["room_id", "body", "client_msg_id", "reply_to", "file_id", "caption", "message_id", "emoji", "on", "typing"];

/// Any JSON value, nested a few levels, with strings that mix ASCII, multi-byte text and controls.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        Just(Value::String(uuid::Uuid::new_v4().to_string())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A frame shaped like the protocol's: a known (or nearly known) action and plausible fields
/// holding arbitrary values — where the parser's interesting paths are.
fn protocol_like_frame() -> impl Strategy<Value = Value> {
    let action = prop_oneof![
        4 => prop::sample::select(ACTIONS).prop_map(|a| Value::String(a.into())),
        1 => ".{0,80}".prop_map(Value::String),
        1 => json_value(),
    ];
    let fields = prop::collection::vec((prop::sample::select(FIELDS), json_value()), 0..6);
    (action, fields, any::<bool>()).prop_map(|(action, fields, with_action)| {
        let mut object = Map::new();
        if with_action {
            object.insert("action".into(), action);
        }
        for (name, value) in fields {
            object.insert(name.into(), value);
        }
        Value::Object(object)
    })
}

/// Every answer to a frame serialises to the JSON event the client reads.
fn answer_is_an_event(result: &Result<ClientAction, mathia::protocol::WsError>) {
    if let Err(err) = result {
        assert!(!err.message.is_empty(), "errors explain themselves");
        let event = serde_json::to_value(ServerEvent::Error(err.clone())).expect("errors serialise");
        assert_eq!(event["type"], "error");
        assert!(event["code"].is_string());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_listed_action_is_known_to_the_parser(action in prop::sample::select(ACTIONS)) {
        let result = parse_frame(&json!({"action": action}).to_string());
        prop_assert!(!matches!(&result, Err(e) if e.code == WsErrorCode::UnknownAction), "{action}: {result:?}");
    }

    #[test]
    fn arbitrary_text_frames_never_panic(raw in ".{0,300}") {
        answer_is_an_event(&parse_frame(&raw));
    }

    #[test]
    fn protocol_shaped_frames_never_panic_and_keep_their_ref(frame in protocol_like_frame()) {
        let raw = frame.to_string();
        let result = parse_frame(&raw);
        answer_is_an_event(&result);
        if let Err(err) = &result
            && raw.len() <= MAX_FRAME_BYTES
            && let Some(cmid) = frame.get("client_msg_id").and_then(Value::as_str)
        {
            prop_assert_eq!(err.reference.as_deref(), Some(cmid), "a failing frame's client_msg_id comes back as ref");
        }
        if let Ok(action) = &result {
            // What parses carries the action the frame named.
            let named = frame["action"].as_str().unwrap_or_default();
            prop_assert!(ACTIONS.contains(&named), "only protocol actions parse, not {named:?} ({action:?})");
        }
    }

    #[test]
    fn unknown_actions_are_named_back_truncated_on_a_char_boundary(action in "\\PC{100,400}") {
        prop_assume!(!ACTIONS.contains(&action.as_str()));
        let err = parse_frame(&json!({"action": action}).to_string()).unwrap_err();
        prop_assert_eq!(err.code, WsErrorCode::UnknownAction);
        // At most 64 characters of it come back, each escaped to at most 10 (`\u{10ffff}`).
        prop_assert!(err.message.chars().count() <= 20 + 64 * 10, "the echo is bounded: {}", err.message);
    }

    #[test]
    fn oversized_frames_are_refused_before_parsing(extra in 1usize..2048, fill in "[a-z\u{e9}\u{1F600}]") {
        let body = fill.repeat((MAX_FRAME_BYTES + extra) / fill.len() + 1);
        let raw = json!({"action": "new_message", "room_id": uuid::Uuid::nil(), "body": body, "client_msg_id": "c"}).to_string();
        let err = parse_frame(&raw).unwrap_err();
        prop_assert_eq!(err.code, WsErrorCode::TooLarge);
    }

    #[test]
    fn validated_text_keeps_its_invariants(raw in "\\s{0,3}.{0,120}\\s{0,3}") {
        // Names lose bidirectional and zero-width characters before they are trimmed and counted.
        let visible: String = raw.chars().filter(|c| !is_invisible_control(*c)).collect();
        for (accepted, max, expected) in [
            (MessageBody::parse(&raw).ok().map(|v| v.into_inner()), MessageBody::MAX_CHARS, raw.trim()),
            (RoomName::parse(&raw).ok().map(|v| v.into_inner()), RoomName::MAX_CHARS, visible.trim()),
            (DisplayName::parse(&raw).ok().map(|v| v.into_inner()), DisplayName::MAX_CHARS, visible.trim()),
            (ClientMsgId::parse(&raw).ok().map(|v| v.into_inner()), ClientMsgId::MAX_CHARS, raw.trim()),
        ] {
            if let Some(value) = accepted {
                prop_assert_eq!(value.as_str(), expected);
                prop_assert!(!value.is_empty() && value.chars().count() <= max);
            } else {
                let len = expected.chars().count();
                prop_assert!(len == 0 || len > max, "refused {raw:?} though it fits");
            }
        }
        if let Ok(email) = Email::parse(&raw) {
            prop_assert!(email.as_str().contains('@') && !email.as_str().chars().any(char::is_whitespace));
            prop_assert_eq!(email.as_str(), email.as_str().to_lowercase());
        }
        let _ = Password::parse(&raw);
    }

    #[test]
    fn reminder_phrases_never_panic_and_land_in_the_future(
        words in prop::collection::vec(prop_oneof![
            Just("remind".to_owned()), Just("me".to_owned()), Just("to".to_owned()), Just("in".to_owned()),
            Just("at".to_owned()), Just("tomorrow".to_owned()), Just("next".to_owned()), Just("mins".to_owned()),
            Just("hours".to_owned()), Just("9am".to_owned()), Just("friday".to_owned()), Just("0".to_owned()),
            Just("-5".to_owned()), Just("99999999999".to_owned()), "[0-9]{1,4}", ".{0,12}",
        ], 0..10),
        tz in prop::sample::select(&["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Pacific/Chatham"][..]),
        seconds in 1_600_000_000i64..2_000_000_000,
    ) {
        let now = Utc.timestamp_opt(seconds, 0).unwrap();
        let tz: chrono_tz::Tz = tz.parse().unwrap();
        if let Ok(parsed) = mathia::reminders::parse::parse(&words.join(" "), tz, now) {
            prop_assert!(parsed.due_at > now, "a reminder is for later: {:?} at {now}", parsed.due_at);
            prop_assert!(!parsed.text.trim().is_empty());
        }
    }

    #[test]
    fn a_well_formed_relative_reminder_always_parses(
        task in prop::sample::select(&["call John", "stretch", "send the deck", "water the plants"][..]),
        n in 1i64..500,
        // Exact durations; "in N days" keeps the wall-clock time across a DST change.
        unit in prop::sample::select(&[("mins", 60i64), ("minutes", 60), ("hours", 3600), ("hrs", 3600)][..]),
        tz in prop::sample::select(&["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"][..]),
        seconds in 1_600_000_000i64..2_000_000_000,
    ) {
        let now = Utc.timestamp_opt(seconds, 0).unwrap();
        let phrase = format!("remind me to {task} in {n} {}", unit.0);
        let parsed = mathia::reminders::parse::parse(&phrase, tz.parse().unwrap(), now);
        prop_assert!(parsed.is_ok(), "{phrase:?} did not parse: {parsed:?}");
        let parsed = parsed.unwrap();
        prop_assert_eq!(parsed.text.as_str(), task);
        prop_assert_eq!(parsed.due_at, now + chrono::Duration::seconds(n * unit.1));
    }

    #[test]
    fn the_time_first_or_last_gives_the_same_reminder(
        task in prop::collection::vec(
            prop::sample::select(&[
                "call", "John", "send", "the", "deck", "review", "PR", "water", "plants", "check", "emails",
                "buy", "3", "eggs", "chapter", "10", "attend", "online", "demo", "invoice", "Ana's", "report",
            ][..]),
            1..6,
        ),
        when in prop::sample::select(&[
            "in 10 mins", "in 2 hours", "in an hour", "at 5pm", "at 17:30", "tomorrow at 9", "tomorrow at 9am",
            "on Friday", "next Monday at 10:30", "at noon", "tomorrow at noon", "tonight", "on Dec 3 at 14:30",
        ][..]),
        lead in prop::sample::select(&["remind me", "Remind me", "@mathia remind me", "remind us"][..]),
        tz in prop::sample::select(&["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"][..]),
        seconds in 1_750_000_000i64..1_850_000_000,
    ) {
        let now = Utc.timestamp_opt(seconds, 0).unwrap();
        let tz: chrono_tz::Tz = tz.parse().unwrap();
        // A task never starts with a word that joins it to the time ("to", "about").
        let task = task.join(" ");
        let last = mathia::reminders::parse::parse(&format!("{lead} to {task} {when}"), tz, now);
        let first = mathia::reminders::parse::parse(&format!("{lead} {when} to {task}"), tz, now);
        prop_assert_eq!(&last, &first, "{} / {} at {}", task, when, now);
        if let Ok(parsed) = last {
            prop_assert_eq!(parsed.text, task);
            prop_assert!(parsed.due_at > now);
        } else {
            // Only a time already gone today is refused; never the task or the phrase.
            prop_assert!(matches!(last, Err(mathia::reminders::parse::ParseError::Past(_))), "{:?}", last);
        }
    }

    #[test]
    fn moderation_and_routing_never_panic(text in ".{0,400}") {
        let _ = mathia::moderation::classify(&text);
        let _ = mathia::ai::router::route(&text);
    }
}
