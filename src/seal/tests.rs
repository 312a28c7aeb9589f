use super::*;
use crate::auth::ServerKey;

fn place(seq: i64) -> Place<'static> {
    Place::Message {
        conversation_id: "conv_a",
        sender: "lead",
        seq,
        field: "body",
    }
}

#[test]
fn a_sealed_value_opens_only_at_its_place() {
    let key = DataKey::generate();
    let stored = seal(&key, place(7), "the marker phrase");
    assert!(is_sealed(&stored));
    assert!(!stored.contains("marker"));
    assert_eq!(
        open(Some(&key), place(7), stored.clone()).unwrap(),
        "the marker phrase"
    );
    for other in [
        place(8),
        Place::Message {
            conversation_id: "conv_b",
            sender: "lead",
            seq: 7,
            field: "body",
        },
        Place::Message {
            conversation_id: "conv_a",
            sender: "worker",
            seq: 7,
            field: "body",
        },
        Place::Message {
            conversation_id: "conv_a",
            sender: "lead",
            seq: 7,
            field: "files",
        },
    ] {
        let e = open(Some(&key), other, stored.clone()).unwrap_err();
        assert!(matches!(e, Error::Damaged(_)), "{e}");
        assert!(!e.to_string().contains("marker"));
    }
    assert!(open(Some(&DataKey::generate()), place(7), stored.clone()).is_err());
    assert!(matches!(open(None, place(7), stored), Err(Error::NoDataKey)));
}

#[test]
fn two_seals_of_one_text_differ() {
    let key = DataKey::generate();
    assert_ne!(seal(&key, place(1), "x"), seal(&key, place(1), "x"));
}

#[test]
fn legacy_plaintext_reads_as_it_is() {
    assert_eq!(open(None, place(1), "plain".into()).unwrap(), "plain");
}

#[test]
fn truncated_or_garbled_seals_are_errors_not_panics() {
    let key = DataKey::generate();
    let stored = seal(&key, place(1), "hello");
    for bad in [
        SEALED_PREFIX.to_owned(),
        format!("{SEALED_PREFIX}!!!"),
        stored[..stored.len() - 3].to_owned(),
        format!("{stored}AAAA"),
    ] {
        assert!(open(Some(&key), place(1), bad).is_err());
    }
}

#[test]
fn a_data_key_unwraps_only_for_its_conversation_and_kek() {
    let server = ServerKey::from_bytes([3; 32]);
    let ring = Keyring::new(&server);
    let wrapped = ring.current().unwrap().wrap(&DataKey::generate(), "conv_a");
    ring.unwrap(&wrapped, "conv_a").unwrap();
    assert!(matches!(ring.unwrap(&wrapped, "conv_b"), Err(Error::Damaged(_))));
    let other = Keyring::new(&ServerKey::from_bytes([4; 32]));
    assert!(matches!(
        other.unwrap(&wrapped, "conv_a"),
        Err(Error::UnknownKek { .. })
    ));
    assert!(matches!(Keyring::default().current(), Err(Error::NoKey)));
}

#[test]
fn rotation_rewraps_and_retires_the_old_kek() {
    let ring = Keyring::new(&ServerKey::from_bytes([3; 32]));
    let old = ring.current().unwrap().wrap(&DataKey::generate(), "c");
    let dek = ring.unwrap(&old, "c").unwrap();
    ring.install(&ServerKey::from_bytes([5; 32]));
    let new = ring.current().unwrap().wrap(&dek, "c");
    ring.retire_others();
    assert!(ring.unwrap(&old, "c").is_err());
    assert_eq!(*ring.unwrap(&new, "c").unwrap().0, *dek.0);
}
