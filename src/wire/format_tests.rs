//! The bytes of every kind of job and result, pinned: the encoders and decoders are written for
//! speed, and any change of theirs must leave the format as it is (or bump [`PROTOCOL`]).

use super::batch::*;
use super::results::*;
use super::test_support::shared;
use super::*;

/// The jobs of a one-message batch as the worker reads them: ticket, seq, attempt, input.
fn decoded(batch: Batch) -> Vec<(u64, u64, u32, Vec<u8>)> {
    let delivery = batch.deliveries(Vec::new()).pop().expect("one message");
    delivery
        .jobs()
        .map(|j| j.map(|j| (j.ticket, j.seq, j.attempt, j.input.to_vec())))
        .collect::<Result<_, _>>()
        .expect("the batch decodes")
}

#[test]
fn every_kind_of_job_keeps_its_bytes() {
    let long = Payload::Inline(vec![6; 200]);
    let inputs = [
        (0, 1, Payload::Inline(vec![])),
        (1, 1, Payload::Inline(vec![5])),
        (5, 1, long),
        (6, 3, Payload::Inline(vec![])),
        (7, 1, shared(b"big")),
        (1 << 40, 1, Payload::Inline(vec![7, 8])),
        (1 << 40 | 1, u32::MAX, shared(b"bigger")),
    ];
    let batch = encode_batch("t", None, 10, inputs.iter().map(|(s, a, p)| (*s, *a, p)));
    let mut want = vec![JOB_TICKET, 10, 0, 0, 1, 5, JOB_SEQ, 5, 0xc8, 0x01];
    want.extend([6; 200]);
    want.extend([JOB_ATTEMPT, 3, 0, JOB_SHARED, 0]);
    want.extend([JOB_SEQ, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 2, 7, 8]);
    want.extend([JOB_ATTEMPT | JOB_SHARED, 0xff, 0xff, 0xff, 0xff, 0x0f, 1]);
    assert_eq!(batch.coded, want);
    let jobs = decoded(batch);
    let sent: Vec<_> = inputs
        .iter()
        .zip(10..)
        .map(|((s, a, p), t)| (t, *s, *a, p.to_vec()))
        .collect();
    assert_eq!(jobs, sent);
}

#[test]
fn every_kind_of_result_keeps_its_bytes() {
    let mut out = ResultsOut::default();
    let mut written = |ticket, started_ns, output: Result<&[u8], Ended>, runtime_ns| {
        out.begin(ticket, started_ns);
        match output {
            Ok(bytes) => out.ok(bytes).unwrap(),
            Err(ended) => out.ended(ended),
        }
        out.end(runtime_ns);
    };
    let big = vec![9u8; SHARE_AT];
    written(0, 0, Ok(&[]), 5);
    written(1, 5, Ok(&[1, 2, 3]), 300);
    written(7, 400, Err(Ended::Failed("no".into())), 1);
    written(8, 401, Err(Ended::TimedOut), 0);
    written(9, 401, Err(Ended::Cancelled), 0);
    let panicked = |message: &str, location: Option<&str>| Ended::Panicked {
        message: message.into(),
        location: location.map(Into::into),
    };
    written(10, 300, Err(panicked("p", Some("a:1"))), 2);
    written(11, 302, Err(panicked("", None)), 0);
    written(12, 302, Ok(&[6; 200]), 1);
    written(13, 303, Ok(&big), 4);
    assert_eq!(out.regions.len(), 1, "the large output is shared");
    let message = out.take(0);
    // Outputs are bincode: a byte slice is its varint length and its bytes.
    let mut want = vec![0, 0, 1, 0, 5];
    want.extend([0, 0, 4, 3, 1, 2, 3, 0xac, 0x02]);
    want.extend([0x11, 7, 0xbe, 0x01, 2, b'n', b'o', 1]);
    want.extend([0x20, 0, 0, 0x30, 0, 0]);
    want.extend([0x40, 0xc9, 0x01, 1, b'p', 1, 3, b'a', b':', b'1', 2]);
    want.extend([0x40, 0, 0, 0, 0]);
    want.extend([0, 0, 0xc9, 0x01, 200]);
    want.extend([6; 200]);
    want.extend([1, 0x50, 0, 0, 4]);
    assert_eq!(message.coded, want);
    let mut got = Vec::new();
    let mut results = ResultsIn::new(message);
    while let Some(r) = results.next() {
        let (ticket, started_ns, runtime_ns) = (r.ticket, r.started_ns, r.runtime_ns);
        got.push((
            ticket,
            started_ns,
            runtime_ns,
            r.output.into_status(|p| p.to_vec()),
        ));
    }
    assert_eq!(results.garbled(), None, "the message decodes");
    // A length of 251 or more is a marker byte, then the length in as few bytes as hold it.
    let mut big_output = vec![0xfc];
    big_output.extend((SHARE_AT as u32).to_le_bytes());
    big_output.extend(&big);
    let failed = |m: &str| Status::Failed(m.into());
    let sent = vec![
        (0, 0, 5, Status::Ok(vec![0])),
        (1, 5, 300, Status::Ok(vec![3, 1, 2, 3])),
        (7, 400, 1, failed("no")),
        (8, 401, 0, Status::TimedOut),
        (9, 401, 0, Status::Cancelled),
        (
            10,
            300,
            2,
            Status::Panicked {
                message: "p".into(),
                location: Some("a:1".into()),
            },
        ),
        (
            11,
            302,
            0,
            Status::Panicked {
                message: String::new(),
                location: None,
            },
        ),
        (12, 302, 1, Status::Ok([&[200][..], &[6; 200]].concat())),
        (13, 303, 4, Status::Ok(big_output)),
    ];
    assert_eq!(got.len(), sent.len());
    for (got, sent) in got.iter().zip(&sent) {
        // Shown cut short: the shared output is 256 KiB.
        let (got, sent) = (format!("{got:?}"), format!("{sent:?}"));
        let cut = |s: &str| s.chars().take(200).collect::<String>();
        assert!(got == sent, "got {}, sent {}", cut(&got), cut(&sent));
    }
}

#[test]
fn jobs_at_the_bound_of_a_one_byte_length_keep_their_bytes() {
    // 127 bytes is the longest input of the usual job's branch; 128 takes the general one.
    let inputs = [
        Payload::Inline(vec![1; 0x7f]),
        Payload::Inline(vec![2; 0x80]),
    ];
    let batch = encode_batch("t", None, 0, inputs.iter().zip(0..).map(|(p, s)| (s, 1, p)));
    let mut want = vec![0, 0x7f];
    want.extend([1; 0x7f]);
    want.extend([0, 0x80, 0x01]);
    want.extend([2; 0x80]);
    assert_eq!(batch.coded, want);
    let jobs = decoded(batch);
    assert_eq!(
        jobs,
        vec![(0, 0, 1, vec![1; 0x7f]), (1, 1, 1, vec![2; 0x80])]
    );
}
