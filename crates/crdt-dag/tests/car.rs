//! History export to CAR v1 and import into an empty replica.

mod common;

use common::*;
use crdt_dag::{DagError, Rejection};

#[test]
fn car_round_trip_gives_the_same_state() {
    let source = history(15);
    let src = &source[2];
    let mut car = Vec::new();
    let n = src.export_car(&mut car).unwrap();
    assert_eq!(n, src.blocks().count());

    let dst = replica(9);
    let import = dst.import_car(&car[..]).unwrap();
    assert_eq!(import.roots, src.heads().unwrap());
    assert_eq!(import.blocks, n);
    assert!(
        import.unapplied_roots.is_empty() && import.report.rejected.is_empty(),
        "{import:?}"
    );
    assert_eq!(import.report.applied, n);
    assert_eq!(snapshot(&dst), snapshot(src));
    assert_eq!(dst.state_hash().unwrap(), src.state_hash().unwrap());

    // Importing again is a no-op.
    let again = dst.import_car(&car[..]).unwrap();
    assert_eq!(again.report.applied, 0);
    assert_eq!(snapshot(&dst), snapshot(src));
}

#[test]
fn tampered_or_truncated_car_is_reported() {
    let source = history(3);
    let src = &source[0];
    let mut car = Vec::new();
    src.export_car(&mut car).unwrap();

    let truncated = &car[..car.len() - 5];
    assert!(
        matches!(replica(9).import_car(truncated), Err(DagError::Car(m)) if m.contains("truncated"))
    );
    assert!(matches!(
        replica(9).import_car(&[][..]),
        Err(DagError::Car(_))
    ));

    // Flip one byte near the end (inside the last block): that block fails
    // its hash check and everything above it stays unapplied.
    let mut tampered = car.clone();
    let at = tampered.len() - 3;
    tampered[at] ^= 0xff;
    let dst = replica(9);
    let import = dst.import_car(&tampered[..]).unwrap();
    assert!(
        matches!(
            import.report.rejected[..],
            [(_, Rejection::HashMismatch(_))]
        ),
        "{:?}",
        import.report.rejected
    );
    assert!(import.report.applied < import.blocks);
}

#[test]
fn a_checking_only_replica_replays_to_the_same_state_without_the_blocks() {
    let source = history(8);
    let src = &source[1];
    let mut car = Vec::new();
    let n = src.export_car(&mut car).unwrap();
    let dst = replica(9).checking_only();
    let import = dst.import_car(&car[..]).unwrap();
    assert!(import.report.is_complete(), "{import:?}");
    assert_eq!(import.report.applied, n);
    assert_eq!(dst.state_hash().unwrap(), src.state_hash().unwrap());
    assert_eq!(dst.delta_count().unwrap(), n as u64);
    assert_eq!(dst.blocks().count(), 0);
    assert_eq!(dst.block(&src.heads().unwrap()[0]).unwrap(), None);
}
