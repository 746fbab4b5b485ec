//! Delivery tracking: which attempt of which alert a request is, and how long
//! after the previous one it came. Pure: time is passed in, nothing is shared.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::database::StoredDelivery;
use crate::alert::AlertKey;

/// Sequences tracked at once; beyond it, finished sequences are forgotten first
/// (the counts are kept), so a flood of unique alerts cannot grow memory without bound.
const MAX_TRACKED: usize = 100_000;

/// Where one request stands among the deliveries of its alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The alert it belongs to.
    pub key: AlertKey,
    /// 1 for the first delivery, 2 for the first retry, ...
    pub number: u32,
    /// Time since the previous attempt of the same delivery.
    pub gap: Option<Duration>,
    /// This attempt's answer acknowledged the delivery (a 2XX, the first of its sequence).
    pub acknowledged: bool,
    /// It was forwarded, and the upstream had already acknowledged an earlier attempt of
    /// the same delivery: the developer's receiver got the alert more than once (the
    /// sender was not told, as with a lost acknowledgement, and retried).
    pub duplicate_upstream: bool,
    /// The `--route` prefix it was numbered under: a route is a destination of its own,
    /// and Panther numbers retries per destination. `None` outside every route.
    pub route: Option<String>,
}

#[derive(Debug)]
struct Sequence {
    attempts: u32,
    last_at: Instant,
    acked: bool,
    /// The upstream (`--forward`) answered an attempt of this delivery with a 2XX.
    upstream_acked: bool,
}

/// Counts over all alert deliveries (bodies with no alert id are not counted),
/// kept by [`Stats`](super::Stats) from each exchange's [`Attempt`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeliveryCounts {
    /// Deliveries started (a new alert, or one sent again after it was acknowledged).
    pub alerts: u64,
    /// Deliveries acknowledged only after one or more retries.
    pub delivered_after_retries: u64,
    /// Deliveries acknowledged at all.
    pub acked: u64,
    /// Deliveries not (yet) acknowledged.
    pub never_acked: u64,
    /// Forwarded attempts that reached the upstream after it had acknowledged the
    /// same delivery: duplicates delivered upstream.
    #[serde(default)]
    pub duplicates_upstream: u64,
    /// The shortest time between two attempts of a delivery, in microseconds.
    #[serde(default)]
    pub shortest_gap_us: Option<u64>,
    /// The longest time between two attempts of a delivery, in microseconds.
    #[serde(default)]
    pub longest_gap_us: Option<u64>,
}

impl DeliveryCounts {
    /// Counts one attempt.
    pub(crate) fn add(&mut self, attempt: &Attempt) {
        if !attempt.key.is_alert() {
            return;
        }
        if attempt.number == 1 {
            self.alerts += 1;
        }
        if attempt.duplicate_upstream {
            self.duplicates_upstream += 1;
        }
        if let Some(gap) = attempt.gap {
            let gap = u64::try_from(gap.as_micros()).unwrap_or(u64::MAX);
            self.shortest_gap_us = Some(self.shortest_gap_us.map_or(gap, |s| s.min(gap)));
            self.longest_gap_us = Some(self.longest_gap_us.map_or(gap, |l| l.max(gap)));
        }
        if attempt.acknowledged {
            self.acked += 1;
            if attempt.number > 1 {
                self.delivered_after_retries += 1;
            }
        }
        // A delivery started before the counts were cleared may be acknowledged after.
        self.never_acked = self.alerts.saturating_sub(self.acked);
    }
}

/// Keys come from the network: a seeded hash (foldhash, hashbrown's own default) is
/// as resistant to chosen collisions as needed here and a fraction of SipHash's cost.
type KeyMap<V> = HashMap<String, V, foldhash::fast::RandomState>;

/// Sequences by alert key, apart for ordinary deliveries (0) and manual re-sends
/// (1); looked up by `&str`, so a known alert costs no allocation.
type Sequences = [KeyMap<Sequence>; 2];

/// Attempt numbering per destination (route) and alert key.
#[derive(Debug, Default)]
pub struct Deliveries {
    /// Requests outside every `--route`.
    unrouted: Sequences,
    /// By route prefix.
    routed: KeyMap<Sequences>,
}

impl Deliveries {
    /// Records a request for `key` arriving at `at` and says which attempt it is.
    ///
    /// Once a delivery was acknowledged the sender stops retrying, so the same key
    /// arriving again starts a new delivery at attempt 1 (a manual re-send also has
    /// its own key, as its title says `[Re-sent]: `).
    pub fn arrive(&mut self, key: &AlertKey, route: Option<&str>, at: Instant) -> Attempt {
        let sequences = self.sequences_for(key, route);
        if !sequences.contains_key(key.value.as_str()) {
            sequences.insert(
                key.value.clone(),
                Sequence {
                    attempts: 0,
                    last_at: at,
                    acked: true,
                    upstream_acked: false,
                },
            );
        }
        let Some(sequence) = sequences.get_mut(key.value.as_str()) else {
            unreachable!("inserted above")
        };
        let gap = if sequence.acked {
            *sequence = Sequence {
                attempts: 1,
                last_at: at,
                acked: false,
                upstream_acked: false,
            };
            None
        } else {
            let gap = at.saturating_duration_since(sequence.last_at);
            sequence.attempts += 1;
            sequence.last_at = at;
            Some(gap)
        };
        Attempt {
            key: key.clone(),
            number: sequence.attempts,
            gap,
            acknowledged: false,
            duplicate_upstream: false,
            route: route.map(str::to_owned),
        }
    }

    /// Records a request for `key` whose place among its delivery's attempts a
    /// shared store decided (`--store postgres://...`): the local sequence follows
    /// it, so that acknowledging and the upstream's duplicates work as they do alone.
    pub fn adopt(
        &mut self,
        key: &AlertKey,
        route: Option<&str>,
        shared: &super::SharedAttempt,
        at: Instant,
    ) -> Attempt {
        self.sequences_for(key, route).insert(
            key.value.clone(),
            Sequence {
                attempts: shared.number,
                last_at: at,
                acked: false,
                upstream_acked: shared.upstream_acked,
            },
        );
        Attempt {
            key: key.clone(),
            number: shared.number,
            gap: shared.gap,
            acknowledged: false,
            duplicate_upstream: false,
            route: route.map(str::to_owned),
        }
    }

    /// The sequences a request for `key` on `route` is numbered in (made the first
    /// time a route is seen; finished ones forgotten first once there are too many).
    fn sequences_for(&mut self, key: &AlertKey, route: Option<&str>) -> &mut KeyMap<Sequence> {
        if self.tracked() >= MAX_TRACKED {
            self.forget_finished();
        }
        let destination = match route {
            None => &mut self.unrouted,
            Some(prefix) => {
                if !self.routed.contains_key(prefix) {
                    self.routed.insert(prefix.to_owned(), Sequences::default());
                }
                let Some(sequences) = self.routed.get_mut(prefix) else {
                    unreachable!("inserted above")
                };
                sequences
            }
        };
        &mut destination[usize::from(key.resent)]
    }

    /// Records that `attempt` was answered with a 2XX: its delivery is acknowledged,
    /// unless an earlier attempt already was.
    pub fn acknowledge(&mut self, attempt: &mut Attempt) {
        if let Some(sequence) = self.sequence_of(attempt) {
            if !sequence.acked {
                sequence.acked = true;
                attempt.acknowledged = true;
            }
        }
    }

    /// Records that the upstream (`--forward`) answered `attempt` with a 2XX; if it
    /// had already acknowledged this delivery, the attempt is a duplicate upstream.
    pub fn upstream_acknowledged(&mut self, attempt: &mut Attempt) {
        if let Some(sequence) = self.sequence_of(attempt) {
            attempt.duplicate_upstream = sequence.upstream_acked;
            sequence.upstream_acked = true;
        }
    }

    /// The state of `attempt`'s delivery as a store keeps it (`--store`), its time
    /// in wall-clock microseconds (an `Instant` does not survive a restart).
    pub fn stored(
        &mut self,
        attempt: &Attempt,
        now: Instant,
        wall_now_us: i64,
    ) -> Option<StoredDelivery> {
        let route = attempt.route.clone().unwrap_or_default();
        let (resent, key) = (attempt.key.resent, attempt.key.value.clone());
        let sequence = self.sequence_of(attempt)?;
        let ago = i64::try_from(now.saturating_duration_since(sequence.last_at).as_micros())
            .unwrap_or(i64::MAX);
        Some(StoredDelivery {
            route,
            resent,
            key,
            attempts: sequence.attempts,
            last_at_us: wall_now_us.saturating_sub(ago),
            acked: sequence.acked,
            upstream_acked: sequence.upstream_acked,
        })
    }

    /// Deliveries as a store kept them: numbering goes on after a restart.
    pub fn restore(&mut self, stored: Vec<StoredDelivery>, now: Instant, wall_now_us: i64) {
        for delivery in stored.into_iter().take(MAX_TRACKED) {
            let ago = u64::try_from(wall_now_us.saturating_sub(delivery.last_at_us)).unwrap_or(0);
            let last_at = now.checked_sub(Duration::from_micros(ago)).unwrap_or(now);
            let destination = if delivery.route.is_empty() {
                &mut self.unrouted
            } else {
                self.routed.entry(delivery.route).or_default()
            };
            destination[usize::from(delivery.resent)].insert(
                delivery.key,
                Sequence {
                    attempts: delivery.attempts,
                    last_at,
                    acked: delivery.acked,
                    upstream_acked: delivery.upstream_acked,
                },
            );
        }
    }

    fn sequence_of(&mut self, attempt: &Attempt) -> Option<&mut Sequence> {
        let key = &attempt.key;
        let destination = match &attempt.route {
            None => Some(&mut self.unrouted),
            Some(prefix) => self.routed.get_mut(prefix.as_str()),
        };
        destination
            .and_then(|sequences| sequences[usize::from(key.resent)].get_mut(key.value.as_str()))
    }

    fn destinations(&mut self) -> impl Iterator<Item = &mut KeyMap<Sequence>> {
        std::iter::once(&mut self.unrouted)
            .chain(self.routed.values_mut())
            .flat_map(|sequences| sequences.iter_mut())
    }

    fn tracked(&self) -> usize {
        std::iter::once(&self.unrouted)
            .chain(self.routed.values())
            .flat_map(|sequences| sequences.iter())
            .map(HashMap::len)
            .sum()
    }

    fn forget_finished(&mut self) {
        for sequences in self.destinations() {
            sequences.retain(|_, sequence| !sequence.acked);
        }
        if self.tracked() >= MAX_TRACKED {
            self.destinations().for_each(HashMap::clear);
            self.routed.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::KeySource;

    fn key(value: &str, resent: bool) -> AlertKey {
        AlertKey {
            value: value.into(),
            source: KeySource::AlertId,
            resent,
        }
    }

    #[test]
    fn an_attempt_a_shared_store_numbered_is_acknowledged_and_its_duplicates_seen_here() {
        let mut deliveries = Deliveries::default();
        let at = Instant::now();
        let a = key("a", false);
        let shared = crate::capture::SharedAttempt {
            number: 3,
            gap: Some(Duration::from_secs(2)),
            upstream_acked: true,
            script_step: None,
        };
        let mut third = deliveries.adopt(&a, Some("/x"), &shared, at);
        assert_eq!((third.number, third.gap), (3, Some(Duration::from_secs(2))));
        assert_eq!(third.route.as_deref(), Some("/x"));
        // Another instance's forward reached the upstream first: this one is a duplicate.
        deliveries.upstream_acknowledged(&mut third);
        assert!(third.duplicate_upstream);
        deliveries.acknowledge(&mut third);
        assert!(third.acknowledged);
        let stored = deliveries
            .stored(&third, at, 1_000)
            .expect("the adopted delivery is kept");
        assert_eq!(
            (stored.attempts, stored.acked, stored.upstream_acked),
            (3, true, true)
        );
    }

    #[test]
    fn retries_are_numbered_with_their_gaps() {
        let mut deliveries = Deliveries::default();
        let start = Instant::now();
        let a = key("a", false);
        let first = deliveries.arrive(&a, None, start);
        assert_eq!((first.number, first.gap), (1, None));
        let second = deliveries.arrive(&a, None, start + Duration::from_millis(1500));
        assert_eq!(
            (second.number, second.gap),
            (2, Some(Duration::from_millis(1500)))
        );
        let third = deliveries.arrive(&a, None, start + Duration::from_millis(3600));
        assert_eq!(
            (third.number, third.gap),
            (3, Some(Duration::from_millis(2100)))
        );
    }

    #[test]
    fn interleaved_alerts_are_counted_apart() {
        let mut deliveries = Deliveries::default();
        let now = Instant::now();
        let (a, b) = (key("a", false), key("b", false));
        let numbers: Vec<u32> = [&a, &b, &a, &b, &b]
            .iter()
            .map(|k| deliveries.arrive(k, None, now).number)
            .collect();
        assert_eq!(numbers, [1, 1, 2, 2, 3]);
    }

    #[test]
    fn re_sent_alerts_and_arrivals_after_an_ack_start_a_new_count() {
        let mut deliveries = Deliveries::default();
        let now = Instant::now();
        let a = key("a", false);
        let mut counts = DeliveryCounts::default();
        let mut attempts = vec![
            deliveries.arrive(&a, None, now),
            deliveries.arrive(&a, None, now),
        ];
        deliveries.acknowledge(&mut attempts[1]);
        let mut late_success = attempts[1].clone();
        late_success.acknowledged = false;
        deliveries.acknowledge(&mut late_success);
        assert!(
            !late_success.acknowledged,
            "a delivery is acknowledged once"
        );
        attempts.push(late_success);
        attempts.push(deliveries.arrive(&key("a", true), None, now));
        attempts.push(deliveries.arrive(&a, None, now));
        assert_eq!(attempts[3].number, 1);
        assert_eq!(attempts[4].number, 1);
        attempts.iter().for_each(|attempt| counts.add(attempt));
        assert_eq!(
            (counts.alerts, counts.acked, counts.delivered_after_retries),
            (3, 1, 1)
        );
        assert_eq!(counts.never_acked, 2);
    }

    #[test]
    fn each_route_numbers_its_own_attempts() {
        let mut deliveries = Deliveries::default();
        let now = Instant::now();
        let a = key("a", false);
        let numbers: Vec<u32> = [None, Some("/down"), Some("/slow"), Some("/down"), None]
            .into_iter()
            .map(|route| deliveries.arrive(&a, route, now).number)
            .collect();
        assert_eq!(numbers, [1, 1, 1, 2, 2]);
        let mut at_slow = deliveries.arrive(&a, Some("/slow"), now);
        deliveries.acknowledge(&mut at_slow);
        assert!(at_slow.acknowledged);
        assert_eq!(deliveries.arrive(&a, Some("/slow"), now).number, 1);
        assert_eq!(deliveries.arrive(&a, Some("/down"), now).number, 3);
    }

    #[test]
    fn an_upstream_that_acknowledged_and_got_the_alert_again_is_a_duplicate() {
        let mut deliveries = Deliveries::default();
        let now = Instant::now();
        let a = key("a", false);
        let mut counts = DeliveryCounts::default();
        // Lost acknowledgement: the app said 200 twice, the sender heard 503 once.
        let mut first = deliveries.arrive(&a, None, now);
        deliveries.upstream_acknowledged(&mut first);
        let mut second = deliveries.arrive(&a, None, now);
        deliveries.upstream_acknowledged(&mut second);
        deliveries.acknowledge(&mut second);
        assert!(!first.duplicate_upstream && second.duplicate_upstream);
        // A new delivery of the same alert after the sender's ack is not a duplicate.
        let mut again = deliveries.arrive(&a, None, now);
        deliveries.upstream_acknowledged(&mut again);
        assert!(!again.duplicate_upstream);
        [first, second, again]
            .iter()
            .for_each(|attempt| counts.add(attempt));
        assert_eq!(counts.duplicates_upstream, 1);
    }

    #[test]
    fn bodies_without_ids_are_numbered_but_not_counted_as_alerts() {
        let mut deliveries = Deliveries::default();
        let body = AlertKey {
            value: "body:1".into(),
            source: KeySource::BodyHash,
            resent: false,
        };
        let first = deliveries.arrive(&body, None, Instant::now());
        let mut second = deliveries.arrive(&body, None, Instant::now());
        assert_eq!(second.number, 2);
        deliveries.acknowledge(&mut second);
        let mut counts = DeliveryCounts::default();
        counts.add(&first);
        counts.add(&second);
        assert_eq!(counts, DeliveryCounts::default());
    }
}
