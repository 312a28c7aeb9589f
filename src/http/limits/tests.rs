use super::*;

fn limiter(max_in_flight: Option<u32>, per_second: Option<u32>) -> Arc<Limiter> {
    Limiter::new(CredentialLimits {
        max_in_flight,
        per_second,
    })
}

#[test]
fn limit_flags_take_a_positive_number_or_off() {
    assert_eq!(parse_limit("16"), Ok(Some(16)));
    assert_eq!(parse_limit("off"), Ok(None));
    assert_eq!(parse_limit("OFF"), Ok(None));
    assert!(parse_limit("0").unwrap_err().contains("off"));
    assert!(parse_limit("-1").is_err());
    assert!(parse_limit("1.5").is_err());
    assert!(parse_limit("").is_err());
    assert!(parse_limit("99999999999").is_err());
}

#[test]
fn in_flight_requests_are_capped_per_agent_and_freed_on_drop() {
    let l = limiter(Some(2), None);
    let now = Instant::now();
    let a = l.admit(1, now).unwrap();
    let _b = l.admit(1, now).unwrap();
    assert_eq!(l.admit(1, now).unwrap_err(), Refusal::InFlight);
    // Another agent has its own slots.
    let _c = l.admit(2, now).unwrap();
    drop(a);
    assert!(l.admit(1, now).is_ok());
}

#[test]
fn the_bucket_holds_one_second_and_refills_at_the_rate() {
    let l = limiter(None, Some(4));
    let t0 = Instant::now();
    for _ in 0..4 {
        drop(l.admit(7, t0).unwrap());
    }
    let Err(Refusal::Rate(wait)) = l.admit(7, t0) else {
        panic!("the fifth request in the same instant must be refused");
    };
    assert_eq!(wait, Duration::from_millis(250));
    assert_eq!(Refusal::Rate(wait).retry_after_secs(), 1);
    // A quarter second later one token is back, and only one.
    let t1 = t0 + Duration::from_millis(250);
    drop(l.admit(7, t1).unwrap());
    assert!(l.admit(7, t1).is_err());
    // Idle for long, the bucket is full again, never fuller.
    let t2 = t1 + Duration::from_secs(60);
    for _ in 0..4 {
        drop(l.admit(7, t2).unwrap());
    }
    assert!(l.admit(7, t2).is_err());
    // The other agent's bucket is untouched.
    assert!(l.admit(8, t2).is_ok());
}

#[test]
fn a_refusal_for_concurrency_takes_no_token() {
    let l = limiter(Some(1), Some(2));
    let t = Instant::now();
    let held = l.admit(1, t).unwrap();
    assert_eq!(l.admit(1, t).unwrap_err(), Refusal::InFlight);
    drop(held);
    // One token was spent by `held`; the refused one spent none.
    assert!(l.admit(1, t).is_ok());
}

#[test]
fn retry_after_is_whole_seconds_rounded_up() {
    assert_eq!(Refusal::InFlight.retry_after_secs(), 1);
    assert_eq!(Refusal::Rate(Duration::from_millis(1)).retry_after_secs(), 1);
    assert_eq!(Refusal::Rate(Duration::from_millis(1001)).retry_after_secs(), 2);
    assert_eq!(Refusal::Rate(Duration::ZERO).retry_after_secs(), 1);
}

#[test]
fn idle_entries_are_dropped_once_there_are_many() {
    let l = limiter(Some(4), Some(10));
    let t0 = Instant::now();
    let busy = l.admit(0, t0).unwrap();
    for agent in 1..PRUNE_AT as i64 {
        drop(l.admit(agent, t0).unwrap());
    }
    assert_eq!(l.len(), PRUNE_AT);
    // A second later every idle bucket is full again: the next new agent
    // drops them all, except the one with a request in flight.
    drop(l.admit(-1, t0 + Duration::from_secs(1)).unwrap());
    assert_eq!(l.len(), 2);
    drop(busy);
}

#[test]
fn both_off_is_no_limit() {
    assert!(
        !CredentialLimits {
            max_in_flight: None,
            per_second: None
        }
        .any()
    );
    assert!(CredentialLimits::default().any());
}
