//! The intent router (the original system's MCP router): turns a request to the assistant into
//! an intent a connector acts on. Rules are ordered, specific first; whatever matches nothing
//! is general chat.

use std::sync::LazyLock;

use regex::Regex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Intent {
    SetReminder,
    Remember,
    Summarize,
    ScheduleMeeting,
    CheckAvailability,
    CheckCalendar,
    CalendlyConnect,
    WalletBalance,
    Help,
    Chat,
}

static RULES: LazyLock<Vec<(Intent, Regex)>> = LazyLock::new(|| {
    let rule = |intent, pattern: &str| (intent, Regex::new(&format!("(?i){pattern}")).expect("intent regex"));
    vec![
        rule(Intent::CalendlyConnect, r"^/?calendly\s+connect\b|\bconnect (my )?calendly\b"),
        rule(Intent::SetReminder, r"\bremind (me|us|\w+)\b|\bset (a|an) reminder\b|\breminder (to|for|at|in)\b"),
        rule(Intent::Remember, r"^(please\s+)?(remember|note|save (a )?note|keep in mind)\b|\bmake a note\b"),
        rule(Intent::Summarize, r"\b(summari[sz]e|summary|recap|tl;?dr)\b"),
        rule(
            Intent::ScheduleMeeting,
            r"\b(schedule|book|set up|arrange|organi[sz]e)\b.{0,40}\b(meeting|call|sync|chat|1:1|one-on-one)\b",
        ),
        rule(
            Intent::CheckAvailability,
            r"\b(am i|are we|is \w+|are you)\s+(free|available|busy)\b|\bmy availability\b|\bfree (slot|time)s?\b",
        ),
        rule(
            Intent::CheckCalendar,
            r"\b(my|the)\s+(calendar|agenda|schedule)\b|\b(upcoming|next) (meetings|events)\b|\bwhat'?s on (my|the)\b",
        ),
        rule(Intent::WalletBalance, r"\b(wallet|balance|credits?|how much money)\b"),
        rule(Intent::Help, r"^(help|\?|what can you do|commands)\b"),
    ]
});

pub fn route(request: &str) -> Intent {
    let request = request.trim();
    RULES.iter().find(|(_, re)| re.is_match(request)).map(|(intent, _)| *intent).unwrap_or(Intent::Chat)
}

/// The intent when the request *is* a command: a rule that matches from its first word
/// ("remind me to call John in 10 mins", "/calendly connect"). With a model that calls tools,
/// anything else is the model's to understand ("can you book something with Bo next Tuesday?").
pub fn route_exact(request: &str) -> Option<Intent> {
    let request = request.trim();
    RULES.iter().find(|(_, re)| re.find(request).is_some_and(|m| m.start() == 0)).map(|(intent, _)| *intent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_commands_are_exact() {
        assert_eq!(route_exact("remind me to call John in 10 mins"), Some(Intent::SetReminder));
        assert_eq!(route_exact("remember that the launch is on Friday"), Some(Intent::Remember));
        assert_eq!(route_exact("/calendly connect"), Some(Intent::CalendlyConnect));
        assert_eq!(route_exact("summarize this week"), Some(Intent::Summarize));
        assert_eq!(route_exact("what did we decide about the launch, and remind me about it on Friday"), None);
        assert_eq!(route_exact("can you book something with Bo next Tuesday afternoon?"), None);
        assert_eq!(route_exact("what's our wallet balance?"), None);
    }

    #[test]
    fn each_phrasing_routes_to_its_intent() {
        let table = [
            ("remind me to call John in 10 mins", Intent::SetReminder),
            ("Remind us about the retro tomorrow at 9am", Intent::SetReminder),
            ("set a reminder for the demo at 5pm", Intent::SetReminder),
            ("remember that the launch is on Friday", Intent::Remember),
            ("note: we chose Postgres", Intent::Remember),
            ("please remember the budget is 10k", Intent::Remember),
            ("summarize today", Intent::Summarize),
            ("give me a recap of this week", Intent::Summarize),
            ("schedule a meeting with ana@example.com tomorrow afternoon", Intent::ScheduleMeeting),
            ("book a call with the client next week", Intent::ScheduleMeeting),
            ("am I free tomorrow at 3pm?", Intent::CheckAvailability),
            ("check my calendar", Intent::CheckCalendar),
            ("what's on my agenda today", Intent::CheckCalendar),
            ("/calendly connect", Intent::CalendlyConnect),
            ("what's our wallet balance?", Intent::WalletBalance),
            ("how many credits are left", Intent::WalletBalance),
            ("help", Intent::Help),
            ("what can you do?", Intent::Help),
            ("what is the capital of France?", Intent::Chat),
            ("write a haiku about deadlines", Intent::Chat),
            ("", Intent::Chat),
        ];
        for (phrase, intent) in table {
            assert_eq!(route(phrase), intent, "{phrase:?}");
        }
    }
}
