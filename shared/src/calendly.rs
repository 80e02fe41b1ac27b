//! Calendly: the intent router's calendar connector.

use async_trait::async_trait;

use crate::{
    ai::{
        connectors::{Answer, Connector, Ctx},
        router::Intent,
    },
    workers::JobError,
};

pub struct CalendlyConnector;

#[async_trait]
impl Connector for CalendlyConnector {
    fn name(&self) -> &'static str {
        "calendly"
    }

    fn intents(&self) -> &'static [Intent] {
        &[Intent::CheckCalendar, Intent::CheckAvailability, Intent::ScheduleMeeting, Intent::CalendlyConnect]
    }

    async fn answer(&self, _ctx: &Ctx<'_>) -> Result<Answer, JobError> {
        Ok(Answer::Reply(
            "Calendly isn't connected for you yet. Open the Calendly panel (right-hand side) and paste a \
             personal access token from Calendly → Integrations → API & Webhooks; then ask me again."
                .into(),
        ))
    }
}
