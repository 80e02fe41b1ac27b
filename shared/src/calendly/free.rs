//! "Find a time" for a room: the open slots of the next days in which every member of the room
//! who connected Calendly is free. Each member's busy times are asked of Calendly with that
//! member's own token; members who have not connected are named, never guessed. Only the
//! room's members are looked at, so nobody else's calendar is ever read.

use chrono::{DateTime, Duration, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use uuid::Uuid;

use super::{account, call};
use crate::{
    adapters::postgres::{onboarding, rooms},
    app::App,
    error::Error,
};

/// Working hours in the asker's timezone, where slots are looked for.
const DAY_START: u32 = 9;
const DAY_END: u32 = 18;
/// At most this many slots are answered.
const MAX_SLOTS: usize = 24;
/// Calendly answers busy times for at most a week at a time.
pub const MAX_DAYS: i64 = 7;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Slot {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CalendarState {
    /// Their busy times were read.
    Connected,
    /// They have not connected Calendly: their time is not known.
    NotConnected,
    /// Connected, but Calendly did not answer for them (their time is not known either).
    Unavailable,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberCalendar {
    pub id: Uuid,
    pub display_name: String,
    pub calendly: CalendarState,
}

#[derive(Debug, Clone, Serialize)]
pub struct FreeTimes {
    /// The asker's timezone: the working hours slots were looked for in.
    pub timezone: String,
    pub minutes: i64,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub slots: Vec<Slot>,
    pub members: Vec<MemberCalendar>,
}

/// The open slots of `minutes` in the next `days` days for `room_id`, asked by `asker` (a member
/// of the room, checked by the caller) who must have connected Calendly.
pub async fn free_times(app: &App, room_id: Uuid, asker: Uuid, days: i64, minutes: i64) -> crate::Result<FreeTimes> {
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(Error::invalid_field("days", format!("1 to {MAX_DAYS}")));
    }
    if ![15, 30, 45, 60, 90, 120].contains(&minutes) {
        return Err(Error::invalid_field("minutes", "15, 30, 45, 60, 90 or 120"));
    }
    if account(app, asker).await?.is_none() {
        return Err(Error::conflict("calendly_not_connected", "connect Calendly first"));
    }
    let tz_name = onboarding::timezone(&app.db, asker).await?;
    let tz: Tz = tz_name.parse().unwrap_or(Tz::UTC);
    let now = app.clock.now();
    let from = round_up(now, 30);
    let to = from + Duration::days(days);

    let mut busy = Vec::new();
    let mut members = Vec::new();
    for crate::domain::Author { id, display_name } in rooms::members(&app.db, room_id).await? {
        let calendly = match account(app, id).await {
            Ok(None) => CalendarState::NotConnected,
            Ok(Some(mut acct)) => {
                let uri = acct.user_uri.clone();
                let answer = call(app, &mut acct, |c, t| {
                    let uri = uri.clone();
                    async move { c.busy_times(&t, &uri, from, to).await }
                })
                .await;
                match answer {
                    Ok(times) => {
                        busy.extend(times.iter().filter_map(interval));
                        CalendarState::Connected
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "a member's busy times could not be read");
                        CalendarState::Unavailable
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "a member's Calendly account could not be read");
                CalendarState::Unavailable
            }
        };
        members.push(MemberCalendar { id, display_name, calendly });
    }
    let slots = open_slots(&busy, from, to, tz, Duration::minutes(minutes));
    Ok(FreeTimes { timezone: tz_name, minutes, from, to, slots, members })
}

/// A busy time from Calendly's `user_busy_times` (the buffered times when given).
fn interval(v: &serde_json::Value) -> Option<Slot> {
    let at = |key: &str, fallback: &str| {
        let s = v[key].as_str().or_else(|| v[fallback].as_str())?;
        DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc))
    };
    let start = at("buffered_start_time", "start_time")?;
    let end = at("buffered_end_time", "end_time")?;
    (end > start).then_some(Slot { start, end })
}

fn round_up(at: DateTime<Utc>, step_minutes: i64) -> DateTime<Utc> {
    let base = at.with_second(0).and_then(|a| a.with_nanosecond(0)).unwrap_or(at);
    let over = i64::from(base.minute()) % step_minutes;
    if over == 0 && base == at { base } else { base + Duration::minutes(step_minutes - over) }
}

/// Slots of `length`, starting on the half hour, inside working hours in `tz`, between `from`
/// and `to`, that overlap none of `busy`.
pub fn open_slots(busy: &[Slot], from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz, length: Duration) -> Vec<Slot> {
    let step = Duration::minutes(30);
    let mut out = Vec::new();
    let mut start = round_up(from, 30);
    while start + length <= to && out.len() < MAX_SLOTS {
        let end = start + length;
        let local_start = start.with_timezone(&tz);
        let local_end = end.with_timezone(&tz);
        let day_start = NaiveTime::from_hms_opt(DAY_START, 0, 0).expect("time");
        let day_end = NaiveTime::from_hms_opt(DAY_END, 0, 0).expect("time");
        let in_hours = local_start.date_naive() == local_end.date_naive()
            && local_start.time() >= day_start
            && local_end.time() <= day_end;
        if in_hours && !busy.iter().any(|b| b.start < end && start < b.end) {
            out.push(Slot { start, end });
        }
        start += step;
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap()
    }

    #[test]
    fn slots_avoid_everyones_busy_times_and_stay_in_working_hours() {
        let tz: Tz = "UTC".parse().unwrap();
        let busy =
            [Slot { start: utc(26, 9, 0), end: utc(26, 10, 0) }, Slot { start: utc(26, 9, 30), end: utc(26, 11, 15) }];
        let slots = open_slots(&busy, utc(26, 8, 10), utc(26, 13, 0), tz, Duration::minutes(60));
        let starts: Vec<_> = slots.iter().map(|s| s.start).collect();
        assert_eq!(starts, [utc(26, 11, 30), utc(26, 12, 0)]);
        // Paris is UTC+1: 9:00–18:00 there is 8:00–17:00 UTC.
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let slots = open_slots(&[], utc(26, 16, 0), utc(26, 20, 0), paris, Duration::minutes(30));
        let starts: Vec<_> = slots.iter().map(|s| s.start).collect();
        assert_eq!(starts, [utc(26, 16, 0), utc(26, 16, 30)]);
    }

    #[test]
    fn the_start_is_rounded_up_to_the_half_hour() {
        assert_eq!(round_up(utc(26, 9, 0), 30), utc(26, 9, 0));
        assert_eq!(round_up(utc(26, 9, 1), 30), utc(26, 9, 30));
        assert_eq!(round_up(utc(26, 9, 45), 30), utc(26, 10, 0));
    }
}
