//! Tests' model of a score that counts events decaying once a second, as
//! gossipsub's P4 and the gossip guard's stream count do: when a peer
//! sending one every `every` seconds is graylisted, and its lowest score.

/// Gossipsub's graylist threshold, as the peer configures it.
pub(crate) fn graylist() -> f64 {
    libp2p::gossipsub::PeerScoreThresholds::default().graylist_threshold
}

/// Events every `every` seconds (the first at 0.5 s) for `secs` seconds,
/// the count kept by `decay` each second and scored by `penalty`: the
/// second the score first falls under the graylist threshold, and the
/// lowest score. A graylisted peer's events are dropped unread, so not
/// counted.
pub(crate) fn every(
    every: f64,
    secs: u32,
    decay: f64,
    penalty: impl Fn(f64) -> f64,
) -> (Option<f64>, f64) {
    let graylist = graylist();
    let (mut count, mut lowest, mut graylisted) = (0.0f64, 0.0f64, None);
    let mut next = 0.5;
    for tick in 0..secs {
        let end = f64::from(tick + 1);
        while next < end {
            if penalty(count) >= graylist {
                count += 1.0;
            }
            let score = penalty(count);
            if score < graylist && graylisted.is_none() {
                graylisted = Some(next);
            }
            lowest = lowest.min(score);
            next += every;
        }
        count *= decay;
    }
    (graylisted, lowest)
}
