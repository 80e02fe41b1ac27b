//! Drives the shared worker handlers in-process: from the local queues (with redelivery and a
//! dead-letter log after `MAX_RECEIVES`), or by long-polling SQS as Lambda's event source
//! mappings would; and the scheduler on a timer.

use std::time::Duration;

use futures::future::join_all;
use mathia::{
    App,
    adapters::local::{LocalQueue, QueuedJob},
    ports::QueueName,
    wiring::Consumers,
    workers::{self, JobError},
};
use tokio::sync::watch;

/// Like the DLQ redrive policy: after this many failed receives a job is given up.
const MAX_RECEIVES: u32 = 5;

pub fn spawn(app: App, consumers: Consumers, shutdown: watch::Receiver<bool>) {
    match consumers {
        Consumers::Elsewhere => {}
        Consumers::Local { queue, receivers } => {
            for (name, mut rx) in receivers {
                let (app, queue, mut shutdown) = (app.clone(), queue.clone(), shutdown.clone());
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            job = rx.recv() => match job {
                                Some(job) => { tokio::spawn(run_local(app.clone(), queue.clone(), name, job)); }
                                None => return,
                            },
                            _ = shutdown.changed() => return,
                        }
                    }
                });
            }
        }
        Consumers::Sqs(sqs) => {
            for name in QueueName::ALL {
                let (app, sqs, mut shutdown) = (app.clone(), sqs.clone(), shutdown.clone());
                tokio::spawn(async move {
                    loop {
                        let batch = tokio::select! {
                            batch = sqs.receive(name, 10, Duration::from_secs(10)) => batch,
                            _ = shutdown.changed() => return,
                        };
                        let messages = match batch {
                            Ok(m) => m,
                            Err(e) => {
                                tracing::warn!(queue = name.as_str(), error = %e, "cannot poll the queue");
                                tokio::time::sleep(Duration::from_secs(2)).await;
                                continue;
                            }
                        };
                        let results = join_all(messages.iter().map(|m| workers::handle(&app, name, &m.body))).await;
                        let handled: Vec<_> = messages
                            .iter()
                            .zip(results)
                            .filter_map(|(m, r)| match r {
                                Ok(()) => Some(m.clone()),
                                Err(e) => {
                                    tracing::warn!(queue = name.as_str(), message_id = %m.message_id, error = %e, "job failed; SQS will redeliver");
                                    None
                                }
                            })
                            .collect();
                        if let Err(e) = sqs.delete(name, &handled).await {
                            tracing::warn!(queue = name.as_str(), error = %e, "cannot delete handled messages");
                        }
                    }
                });
            }
        }
    }
}

async fn run_local(app: App, queue: LocalQueue, name: QueueName, job: QueuedJob) {
    match workers::handle(&app, name, &job.body).await {
        Ok(()) => {}
        Err(JobError::Final(e)) => {
            tracing::error!(queue = name.as_str(), message_id = %job.message_id, error = %e, "dead-lettered: the job cannot succeed");
        }
        Err(e) if job.receive_count >= MAX_RECEIVES => {
            tracing::error!(queue = name.as_str(), message_id = %job.message_id, error = %e, "dead-lettered after {MAX_RECEIVES} attempts");
        }
        Err(e) => {
            let backoff = Duration::from_millis(500 * 2u64.pow(job.receive_count.min(6)));
            tracing::warn!(queue = name.as_str(), message_id = %job.message_id, error = %e, ?backoff, "job failed; retrying");
            queue.redeliver(name, job, backoff);
        }
    }
}

pub fn spawn_scheduler(app: App, mut shutdown: watch::Receiver<bool>) {
    let every = app.config.scheduler_every;
    tokio::spawn(async move {
        // The first tick one period after the start: a test that moves the clock and ticks
        // itself sets a period longer than it runs, and no tick of this loop races its own.
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => { workers::scheduler::tick(&app).await; }
                _ = shutdown.changed() => return,
            }
        }
    });
}
