//! The event log's tests: appends, group flushes, batches, deletes and item writes, replay.

use super::*;

fn event(user: &str, item: &str, weight: f32) -> Event {
    Event { user: user.into(), item: item.into(), weight, timestamp: Some(7) }
}

#[test]
fn an_event_sent_with_integer_ids_is_the_event_with_their_digits() {
    let sent: Event = serde_json::from_str(r#"{"user": 151, "item": 260, "timestamp": 7}"#).unwrap();
    assert_eq!(sent, event("151", "260", 1.0));
    let fraction = serde_json::from_str::<Event>(r#"{"user": "u", "item": 2.5}"#).unwrap_err();
    assert!(fraction.to_string().contains("expected an id"), "{fraction}");
}

#[test]
fn acknowledged_events_survive_reopening_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), 0).unwrap();
    let first = log.append(vec![event("u", "a", 1.0), event("v", "b", 2.0)]).unwrap();
    assert_eq!((first.first_seq, first.last_seq, first.accepted), (1, 2, 2));
    let second = log.append(vec![event("u", "c", 0.5)]).unwrap();
    assert_eq!(second.first_seq, 3);
    assert_eq!(log.user_events("u", 0), vec![event("u", "a", 1.0), event("u", "c", 0.5)]);
    assert_eq!(log.user_version("u", 0), 3);
    assert!(EventLog::open(dir.path(), 0).is_err(), "a second writer is refused");
    drop(log);
    let reopened = EventLog::open(dir.path(), 0).unwrap();
    assert_eq!(reopened.user_events("u", 0).len(), 2);
    assert_eq!(reopened.append(vec![event("w", "a", 1.0)]).unwrap().first_seq, 4);
    let read: Vec<u64> = read_events(dir.path()).unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(read, vec![1, 2, 3, 4]);
}

#[test]
fn a_partial_last_line_is_cut_off_and_a_corrupt_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), 0).unwrap();
    log.append(vec![event("u", "a", 1.0)]).unwrap();
    let path = log.segment_path(log.file.lock().unwrap().number);
    drop(log);
    // A crash mid-write: half a line, no newline.
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(br#"{"seq":2,"written_ms":1,"user":"u","it"#).unwrap();
    drop(file);
    assert_eq!(read_events(dir.path()).unwrap().len(), 1, "readers skip the partial line");
    let log = EventLog::open(dir.path(), 0).unwrap();
    assert_eq!(log.user_events("u", 0).len(), 1);
    assert!(fs::read(&path).unwrap().ends_with(b"\n"), "the partial line was cut off");
    assert_eq!(log.append(vec![event("u", "b", 1.0)]).unwrap().first_seq, 2);
    drop(log);
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(b"not json\n").unwrap();
    drop(file);
    let error = EventLog::open(dir.path(), 0).err().unwrap().to_string();
    assert!(error.contains("events-00000001.jsonl") && error.contains("line 3"), "{error}");
}

#[test]
fn invalid_events_are_refused_by_row_and_field_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), 0).unwrap();
    for (bad, field) in [
        (event("u", "a", f32::NAN), "events[1].weight"),
        (event("u", "a", 0.0), "events[1].weight"),
        (event("u", "a", -1.0), "events[1].weight"),
        (event("", "a", 1.0), "events[1].user"),
        (event("u", " ", 1.0), "events[1].item"),
        (event("u", "a", 2.0e6), "events[1].weight"),
        (event(&"u".repeat(513), "a", 1.0), "events[1].user"),
    ] {
        match log.append(vec![event("u", "a", 1.0), bad]) {
            Err(Error::InvalidArgument { field: named, .. }) => assert_eq!(named, field),
            other => panic!("{other:?}"),
        }
    }
    assert!(log.append(Vec::new()).is_err());
    assert_eq!(log.stats().events, 0);
    assert!(read_events(dir.path()).unwrap().is_empty());
}

#[test]
fn folding_hides_folded_events_and_retires_them_one_generation_later() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), 0).unwrap();
    log.append(vec![event("u", "a", 1.0), event("u", "b", 1.0)]).unwrap();
    drop(log);
    let log = EventLog::open(dir.path(), 0).unwrap();
    log.append(vec![event("u", "c", 1.0)]).unwrap();
    log.append(vec![event("v", "d", 1.0)]).unwrap();
    assert_eq!(log.stats().events, 4);
    // A generation that folded in events 1–3 now serves.
    log.fold(3);
    assert_eq!(log.user_events("u", 3), Vec::<Event>::new());
    assert_eq!(log.user_version("u", 3), 0);
    assert_eq!(log.user_events("v", 3).len(), 1);
    // The previous generation (folded nothing) still sees all of its events.
    assert_eq!(log.user_events("u", 0).len(), 3);
    let stats = log.stats();
    assert_eq!((stats.events, stats.users, stats.last_seq, stats.folded_through), (1, 1, 4, 3));
    // The next generation folds in nothing new: events through 3 leave memory, not disk.
    log.fold(3);
    assert_eq!(log.user_events("u", 0).len(), 0);
    let seqs: Vec<u64> = read_events(dir.path()).unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4], "every build reads every event");
    // CURRENT rolled back to a generation that folded nothing: the events that left
    // memory come back from the files.
    log.fold(0);
    assert_eq!(log.user_events("u", 0).len(), 3);
    assert_eq!(log.stats().events, 4);
    log.fold(3);
    // Reopened as the serving generation's log: sequence numbers go on.
    drop(log);
    let log = EventLog::open(dir.path(), 3).unwrap();
    assert_eq!(log.stats().events, 1);
    assert_eq!(log.append(vec![event("u", "e", 1.0)]).unwrap().first_seq, 5);
}

#[test]
fn a_retried_batch_is_written_once_and_an_id_reused_for_other_events_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), 0).unwrap();
    let batch = vec![event("u", "a", 1.0), event("u", "b", 1.0)];
    let first = log.append_batch(batch.clone(), Some("b-1".into())).unwrap();
    assert!(!first.replayed);
    let again = log.append_batch(batch.clone(), Some("b-1".into())).unwrap();
    assert_eq!((again.first_seq, again.last_seq, again.replayed), (first.first_seq, first.last_seq, true));
    assert_eq!(log.known_batch("b-1", &batch), Some(again));
    assert_eq!(log.known_batch("b-1", &batch[..1]), None, "other events under the id");
    for (id, events) in [
        ("b-1", vec![event("u", "c", 1.0)]),
        (&*"x".repeat(129), batch.clone()),
        ("", batch.clone()),
        ("\u{0}", batch.clone()),
        (" b ", batch.clone()),
    ] {
        match log.append_batch(events, Some(id.to_string())) {
            Err(Error::InvalidArgument { field, .. }) => assert_eq!(field, "batch_id"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(log.stats().events, 2);
    let other = log.append_batch(batch.clone(), Some("b-2".into())).unwrap();
    assert_eq!((other.first_seq, other.replayed), (3, false), "a new id is a new batch");
    drop(log);
    let log = EventLog::open(dir.path(), 0).unwrap();
    assert!(log.append_batch(batch.clone(), Some("b-1".into())).unwrap().replayed, "remembered across a restart");
    log.fold(4);
    log.fold(4);
    assert!(log.append_batch(batch, Some("b-1".into())).unwrap().replayed, "and after its events left memory");
    assert_eq!(read_events(dir.path()).unwrap().len(), 4);
}

#[test]
fn concurrent_appends_are_all_durable_and_numbered_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(EventLog::open(dir.path(), 0).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = std::sync::Arc::clone(&log);
            std::thread::spawn(move || {
                (0..50)
                    .map(|i| {
                        let batch = vec![event(&format!("u{t}"), &format!("i{i}"), 1.0); 1 + i % 3];
                        let appended = log.append(batch).unwrap();
                        (appended.first_seq, appended.last_seq)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut acknowledged: Vec<(u64, u64)> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    acknowledged.sort();
    // The batches tile 1..=n exactly: no number twice, none skipped.
    let mut next = 1;
    for (first, last) in &acknowledged {
        assert_eq!(*first, next);
        next = last + 1;
    }
    let stats = log.stats();
    assert_eq!(stats.events as u64, next - 1);
    assert!(stats.flushes <= 400 && stats.flushes > 0, "{stats:?}");
    eprintln!("400 appends from 8 threads in {} flushes", stats.flushes);
    for t in 0..8 {
        let mine = log.user_events(&format!("u{t}"), 0);
        assert_eq!(mine.len(), (0..50).map(|i| 1 + i % 3).sum::<usize>());
    }
    drop(log);
    let seqs: Vec<u64> = read_events(dir.path()).unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..next).collect::<Vec<_>>(), "the file holds every event, in order");
}

#[test]
fn deletes_are_logged_beside_events_and_folded_like_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), 0).unwrap();
    log.append(vec![event("u", "a", 1.0)]).unwrap();
    assert_eq!(log.delete_item("b", "hash-of-b".into()).unwrap().first_seq, 2);
    log.append(vec![event("u", "c", 1.0)]).unwrap();
    assert_eq!(log.deleted_items(0), vec![("b".to_string(), 2, "hash-of-b".to_string())]);
    assert_eq!(log.deleted_items(2), Vec::new());
    let stats = log.stats();
    assert_eq!((stats.events, stats.deleted_items), (2, 1));
    drop(log);
    let read = read_events(dir.path()).unwrap();
    assert_eq!(read[1].record, Record::Delete(ItemDelete { delete_item: "b".into(), item_hash: "hash-of-b".into() }));
    assert_eq!(read[2].event().map(|e| e.item.as_str()), Some("c"));
    let log = EventLog::open(dir.path(), 0).unwrap();
    assert_eq!(log.deleted_items(0).len(), 1);
    assert_eq!(log.user_events("u", 0).len(), 2);
    // Field updates: every one per item, in order (whether the last applies depends on those
    // before it), versioned, and read back as written.
    let price = |p: f64| [("price".to_string(), crate::item::FieldValue::Number(p))].into_iter().collect();
    let first = log.update_fields("a", "hash-of-a".into(), price(3.0)).unwrap().first_seq;
    let last = log.update_fields("a", "hash-of-a".into(), price(2.5)).unwrap().first_seq;
    assert_eq!(log.fields_version(), last);
    let both = vec![(first, "hash-of-a".to_string(), price(3.0)), (last, "hash-of-a".to_string(), price(2.5))];
    assert_eq!(log.field_updates(0), vec![("a".to_string(), both.clone())]);
    assert_eq!(log.field_updates_of("a", first), both[1..]);
    assert_eq!(log.field_updates(last), Vec::new());
    drop(log);
    let read = read_events(dir.path()).unwrap();
    assert!(matches!(&read.last().unwrap().record, Record::Fields(u) if u.fields == price(2.5)));
}
