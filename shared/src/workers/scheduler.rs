//! The scheduler: periodic jobs, run by EventBridge every minute on AWS and by a timer in
//! `mathia-local`. Every job is safe to run twice or on two instances at once.

use chrono::Duration;
use serde::Serialize;

use crate::{app::App, realtime::forget_connection};

/// API Gateway closes a WebSocket after two hours; entries older than that are stale.
pub const CONNECTION_LIFETIME: Duration = Duration::hours(2);

/// What a tick did, for logs and tests.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct TickReport {
    pub stale_connections_dropped: usize,
    pub reminders_queued: usize,
    pub messages_sent_to_moderation: usize,
    /// The moderation jobs those messages went in (quiet rooms share them).
    pub moderation_batches: usize,
    pub mutes_lifted: usize,
    pub abandoned_uploads_removed: usize,
    pub tool_outcomes_forgotten: usize,
    /// Arrivals told late, once the person's presence budget allowed.
    pub arrivals_told: usize,
    /// Departures told late: their arrival was kept as heard just after they looked for it, or
    /// whoever forgot their connection was cut off before telling the room.
    pub departures_told: usize,
    /// Departures whose connection was forgotten by a process cut off before it crossed them off
    /// (`realtime::forget_connection`), taken back to be finished.
    pub departures_cut_off: usize,
    /// Connections a push found gone whose `$disconnect` had not forgotten them.
    pub gone_connections_forgotten: usize,
    /// Welcome credits whose client address stopped counting (a day old) and was cleared.
    pub welcome_addresses_forgotten: u64,
}

#[tracing::instrument(skip_all)]
pub async fn tick(app: &App) -> TickReport {
    let mut report = TickReport::default();
    let cutoff = app.clock.now() - CONNECTION_LIFETIME;
    match app.connections.older_than(cutoff).await {
        Ok(stale) => {
            for id in stale {
                if let Some(info) = forget_connection(app, &id).await {
                    let _ = app.push.close((&info).into()).await;
                    report.stale_connections_dropped += 1;
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot sweep connections"),
    }
    (report.messages_sent_to_moderation, report.moderation_batches) = crate::moderation::flush_stale(app).await;
    report.mutes_lifted = crate::moderation::lift_expired(app).await;
    match crate::reminders::sweep(app).await {
        Ok(n) => report.reminders_queued = n,
        Err(e) => tracing::warn!(error = %e, "cannot sweep reminders"),
    }
    report.abandoned_uploads_removed = crate::files::sweep_abandoned(app).await;
    report.tool_outcomes_forgotten = crate::ai::agent::forget_old_outcomes(app).await;
    match crate::adapters::postgres::wallet::forget_welcome_addresses(&app.db, app.clock.now()).await {
        Ok(n) => report.welcome_addresses_forgotten = n,
        Err(e) => tracing::warn!(error = %e, "cannot forget welcome credits' addresses"),
    }
    let settled = crate::realtime::settle_departures(app).await;
    (report.gone_connections_forgotten, report.departures_cut_off) = (settled.gone_forgotten, settled.cut_off);
    let told = crate::realtime::tell_untold_presence(app).await;
    (report.arrivals_told, report.departures_told) = (told.arrivals, told.departures);
    tracing::debug!(?report, "scheduler tick");
    report
}
