//! A few slots of costly work shared fairly between the parties asking for them.
//!
//! Argon2 is the costly work: each hash holds a core and 19 MiB for tens of milliseconds, so a
//! process runs one per core and lets a bounded number of requests wait. With a single queue, one
//! address sending sign-ups or logins as fast as it can keeps that queue full, and everyone else
//! is refused (503) or waits behind all of it. Here each party — a client address — has a queue of
//! its own, bounded on its own, and a freed slot goes to the parties in turn: a newcomer waits for
//! about one piece of work per party ahead of it, however many one party has queued.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use tokio::sync::oneshot;

/// Why a request for a slot was refused at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This party already has as many waiting as one party may.
    PartyFull,
    /// As many are waiting as the process keeps, across all parties.
    Full,
}

/// `at_once` slots; at most `waiting_per_party` requests of one party and `waiting_total` in all
/// wait for one.
pub struct FairSlots {
    at_once: usize,
    waiting_per_party: usize,
    waiting_total: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    running: usize,
    waiting: usize,
    queues: HashMap<String, VecDeque<oneshot::Sender<Slot>>>,
    /// The parties with someone waiting, in the order they are served.
    turns: VecDeque<String>,
}

/// A slot, held while the work runs; dropping it hands it to the next party's first waiter.
pub struct Slot(Option<Arc<FairSlots>>);

impl FairSlots {
    pub fn new(at_once: usize, waiting_per_party: usize, waiting_total: usize) -> Self {
        assert!(at_once > 0, "at least one slot");
        Self { at_once, waiting_per_party, waiting_total, state: Mutex::default() }
    }

    pub fn at_once(&self) -> usize {
        self.at_once
    }

    /// A slot for `party` now, or once it is `party`'s turn; refused at once when `party`'s queue
    /// or the whole queue is full. Dropping the returned future gives up the place in the queue.
    pub async fn acquire(self: &Arc<Self>, party: &str) -> Result<Slot, Refused> {
        let turn = {
            let mut state = self.state.lock().expect("fair slots poisoned");
            if state.running < self.at_once && state.waiting == 0 {
                state.running += 1;
                return Ok(Slot(Some(self.clone())));
            }
            let State { queues, waiting, turns, .. } = &mut *state;
            let queue = queues.entry(party.to_owned()).or_default();
            if queue.len() >= self.waiting_per_party {
                // Places held by requests that have since gone away are free again.
                let before = queue.len();
                queue.retain(|w| !w.is_closed());
                *waiting -= before - queue.len();
                if queue.is_empty() {
                    turns.retain(|p| p != party);
                }
            }
            let refused = if queue.len() >= self.waiting_per_party {
                Some(Refused::PartyFull)
            } else if *waiting >= self.waiting_total {
                Some(Refused::Full)
            } else {
                None
            };
            if let Some(refused) = refused {
                if queue.is_empty() {
                    queues.remove(party);
                }
                return Err(refused);
            }
            let (tx, rx) = oneshot::channel();
            if queue.is_empty() {
                turns.push_back(party.to_owned());
            }
            queue.push_back(tx);
            *waiting += 1;
            rx
        };
        // The sender is dropped only after sending, or when this receiver has gone.
        Ok(turn.await.expect("a waiter is answered with a slot"))
    }

    /// Hands a freed slot to the next party's first waiter still there, or frees it.
    fn release(self: &Arc<Self>) {
        let mut state = self.state.lock().expect("fair slots poisoned");
        let State { queues, waiting, turns, running } = &mut *state;
        while let Some(party) = turns.pop_front() {
            let queue = queues.get_mut(&party).expect("a party in turn has a queue");
            let next = queue.pop_front().expect("a party in turn has a waiter");
            *waiting -= 1;
            if queue.is_empty() {
                queues.remove(&party);
            } else {
                turns.push_back(party);
            }
            match next.send(Slot(Some(self.clone()))) {
                Ok(()) => return,
                // That request went away: the slot comes back, not to be released twice.
                Err(mut slot) => drop(slot.0.take()),
            }
        }
        *running -= 1;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // A slot sent to a waiter that goes away before taking it is dropped inside the channel,
        // and is handed on from here like any other.
        if let Some(owner) = self.0.take() {
            owner.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_slot_is_free_until_all_are_taken_and_comes_back_when_dropped() {
        let slots = Arc::new(FairSlots::new(2, 4, 16));
        let a = slots.acquire("x").await.unwrap();
        let _b = slots.acquire("y").await.unwrap();
        let waiter = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire("x").await.map(|_| ()) }
        });
        settle().await;
        assert!(!waiter.is_finished(), "a third ran while two slots were taken");
        drop(a);
        tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap().unwrap();
        assert_eq!(slots.state.lock().unwrap().running, 1);
    }

    #[tokio::test]
    async fn a_party_with_a_full_queue_is_refused_and_another_still_waits() {
        let slots = Arc::new(FairSlots::new(1, 3, 100));
        let _running = slots.acquire("flood").await.unwrap();
        let mut flood = Vec::new();
        for _ in 0..3 {
            let slots = slots.clone();
            flood.push(tokio::spawn(async move { slots.acquire("flood").await.map(|_| ()) }));
        }
        settle().await;
        assert_eq!(slots.acquire("flood").await.err(), Some(Refused::PartyFull));
        let other = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire("other").await.map(|_| ()) }
        });
        settle().await;
        assert!(!other.is_finished(), "queued, not refused");
        assert_eq!(slots.state.lock().unwrap().waiting, 4);
    }

    #[tokio::test]
    async fn past_the_total_everyone_is_refused() {
        let slots = Arc::new(FairSlots::new(1, 10, 2));
        let _running = slots.acquire("a").await.unwrap();
        let waiters: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|p| {
                let slots = slots.clone();
                tokio::spawn(async move { slots.acquire(p).await.map(|_| ()) })
            })
            .collect();
        settle().await;
        assert_eq!(slots.acquire("c").await.err(), Some(Refused::Full));
        drop(waiters);
    }

    /// The order slots are handed out in, when one party queued many before another arrived.
    #[tokio::test]
    async fn freed_slots_go_to_the_parties_in_turn() {
        let slots = Arc::new(FairSlots::new(1, 100, 100));
        let first = slots.acquire("flood").await.unwrap();
        let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (slots, done_tx) = (slots.clone(), done_tx.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = slots.acquire("flood").await.unwrap();
                done_tx.send(format!("flood-{i}")).unwrap();
            }));
            settle().await;
        }
        let (slots2, done_tx2) = (slots.clone(), done_tx.clone());
        tasks.push(tokio::spawn(async move {
            let _slot = slots2.acquire("newcomer").await.unwrap();
            done_tx2.send("newcomer".to_owned()).unwrap();
        }));
        settle().await;
        drop(first);
        for task in tasks {
            task.await.unwrap();
        }
        drop(done_tx);
        let mut order = Vec::new();
        while let Some(name) = done.recv().await {
            order.push(name);
        }
        assert_eq!(order, ["flood-0", "newcomer", "flood-1", "flood-2", "flood-3", "flood-4"]);
    }

    #[tokio::test]
    async fn a_waiter_that_goes_away_neither_keeps_its_place_nor_loses_the_slot() {
        let slots = Arc::new(FairSlots::new(1, 2, 100));
        let running = slots.acquire("a").await.unwrap();
        let gone: Vec<_> = (0..2)
            .map(|_| {
                let slots = slots.clone();
                tokio::spawn(async move { slots.acquire("a").await.map(|_| ()) })
            })
            .collect();
        settle().await;
        for task in &gone {
            task.abort();
        }
        settle().await;
        // Its queue was full of requests that went away: the places are free again.
        let next = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire("a").await.map(|_| ()) }
        });
        settle().await;
        drop(running);
        tokio::time::timeout(Duration::from_secs(5), next).await.unwrap().unwrap().unwrap();
        let state = slots.state.lock().unwrap();
        assert_eq!((state.running, state.waiting, state.turns.len()), (0, 0, 0));
    }

    /// A slot sent to a waiter that is dropped before it runs again is handed on, not lost.
    #[tokio::test]
    async fn a_slot_sent_to_a_waiter_that_then_goes_away_is_handed_on() {
        let slots = Arc::new(FairSlots::new(1, 10, 100));
        let running = slots.acquire("a").await.unwrap();
        let mut abandoned = Box::pin(slots.acquire("b"));
        assert!(futures::poll!(abandoned.as_mut()).is_pending());
        let after = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire("c").await.map(|_| ()) }
        });
        settle().await;
        // The slot goes to "b", whose request is dropped without taking it.
        drop(running);
        drop(abandoned);
        tokio::time::timeout(Duration::from_secs(5), after).await.unwrap().unwrap().unwrap();
        assert_eq!(slots.state.lock().unwrap().running, 0);
    }
}
