//! A message of results: its byte layout, the worker's encoder and the coordinator's decoder.

use super::varint::*;
use super::*;

/// A result's flag: its ticket is written, not the one after the result before's.
pub(super) const RESULT_TICKET: u8 = 1;

// A result's status tag, the high four bits of its flags byte (see [`ResultsOut`]), and what
// follows it before the runtime.
/// A success: its output's length and bytes.
pub(super) const TAG_OK: u8 = 0;
/// A failure: its message's length and bytes.
pub(super) const TAG_FAILED: u8 = 1;
pub(super) const TAG_TIMED_OUT: u8 = 2;
pub(super) const TAG_CANCELLED: u8 = 3;
/// A panic: its message, then [`LOCATION`] and the location, or [`NO_LOCATION`].
pub(super) const TAG_PANICKED: u8 = 4;
/// A success whose output is in a shared-memory region: the region's place in the message.
pub(super) const TAG_OK_SHARED: u8 = 5;

/// The flags of the usual result: the next ticket, a success.
pub(super) const TAG_USUAL: u8 = TAG_OK << 4;

/// Whether a panic's location follows its message.
pub(super) const NO_LOCATION: u8 = 0;
pub(super) const LOCATION: u8 = 1;

/// The most room a new message of results starts with.
pub(super) const MESSAGE_ROOM: usize = 64 << 10;

/// A message of results, written as the jobs finish. Per job a flags byte, its status's tag in
/// the high four bits; the `ticket` unless it is the one after the result before's; when it
/// started, as the zigzag varint of the nanoseconds since the result before ended (since 0 for
/// the first); the status's bytes and strings, each as a varint length and its bytes (a panic's
/// location after a presence byte; a shared output as the varint place of its region in
/// `regions`); then its `runtime_ns`. Every integer is an unsigned LEB128 varint, so a no-op's
/// result takes four bytes.
///
/// An output is encoded straight into the message as its task returns it: a worker keeps no
/// record of a finished job, and the message needs no pass of its own.
#[derive(Default)]
pub(crate) struct ResultsOut {
    coded: Vec<u8>,
    pub(super) regions: Vec<Payload>,
    /// Where the result being written starts, and where its status does.
    head: usize,
    body: usize,
    /// When the result being written started.
    started_ns: u64,
    /// The ticket of a result that does not write its own, and when the one before ended.
    next_ticket: u64,
    ended_ns: u64,
}

impl ResultsOut {
    /// Starts the result of job `ticket`, begun at `started_ns`; [`end`](Self::end) finishes
    /// it, after its output or how it ended. Its status is a success until said otherwise.
    ///
    /// The usual result (the next ticket, started as the one before ended) is the first branch:
    /// flags and start one byte each, written at once. Every other is begun by
    /// [`begin_other`](Self::begin_other), out of line and cold. Through that tail alone the
    /// workers took 16% more instructions (200K no-ops on 2 processes, callgrind: 47.6 M against
    /// 41.2 M).
    /// Inlined into the worker's loop, as is `end`: a call each cost as much as the usual
    /// case's work, in saving and restoring registers.
    #[inline(always)]
    pub(crate) fn begin(&mut self, ticket: u64, started_ns: u64) {
        self.head = self.coded.len();
        self.started_ns = started_ns;
        if (ticket, started_ns) == (self.next_ticket, self.ended_ns) {
            self.coded.extend_from_slice(&[TAG_USUAL, 0]);
            self.body = self.head + 2;
        } else {
            self.begin_other(ticket, started_ns);
        }
        self.next_ticket = ticket.wrapping_add(1);
    }

    /// The rest of [`begin`](Self::begin): a result that writes its ticket or a later start.
    #[cold]
    #[inline(never)]
    fn begin_other(&mut self, ticket: u64, started_ns: u64) {
        let written = ticket != self.next_ticket;
        self.coded.push(match written {
            true => TAG_USUAL | RESULT_TICKET,
            false => TAG_USUAL,
        });
        if written {
            put_varint(&mut self.coded, ticket);
        }
        put_varint(
            &mut self.coded,
            zigzag(started_ns.wrapping_sub(self.ended_ns)),
        );
        self.body = self.coded.len();
    }

    /// The job's output, encoded inline or, when large, into a shared-memory region.
    #[inline]
    pub(crate) fn ok<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), String> {
        let shared = encode_value(value, &mut self.coded, |out, len| {
            put_varint(out, len as u64);
        })?;
        if let Some(region) = shared {
            self.tag(TAG_OK_SHARED);
            put_varint(&mut self.coded, self.regions.len() as u64);
            self.regions.push(Payload::Shared(region));
        }
        Ok(())
    }

    /// Sets the status tag of the result being written.
    fn tag(&mut self, tag: u8) {
        let flags = &mut self.coded[self.head];
        *flags = *flags & 0x0f | tag << 4;
    }

    /// The job ended without an output: whatever of one was written goes.
    pub(crate) fn ended(&mut self, ended: Ended) {
        self.coded.truncate(self.body);
        let put = |out: &mut Vec<u8>, bytes: &[u8]| {
            put_varint(out, bytes.len() as u64);
            out.extend_from_slice(bytes);
        };
        let tag = match ended {
            Ended::Failed(m) => {
                put(&mut self.coded, m.as_bytes());
                TAG_FAILED
            }
            Ended::TimedOut => TAG_TIMED_OUT,
            Ended::Cancelled => TAG_CANCELLED,
            Ended::Panicked { message, location } => {
                put(&mut self.coded, message.as_bytes());
                match &location {
                    Some(at) => {
                        self.coded.push(LOCATION);
                        put(&mut self.coded, at.as_bytes());
                    }
                    None => self.coded.push(NO_LOCATION),
                }
                TAG_PANICKED
            }
        };
        self.tag(tag);
    }

    /// Finishes the result begun last, which ran for `runtime_ns`.
    #[inline]
    pub(crate) fn end(&mut self, runtime_ns: u64) {
        put_varint(&mut self.coded, runtime_ns);
        self.ended_ns = self.started_ns.wrapping_add(runtime_ns);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.coded.is_empty()
    }

    /// Whether an output went into a shared-memory region: the worker sends such a message
    /// at once, so a message carries at most one region.
    pub(crate) fn has_region(&self) -> bool {
        !self.regions.is_empty()
    }

    /// Sends the results written so far, lending their regions (see [`Lent`]), and starts
    /// the next message with room for as many.
    pub(crate) fn send(&mut self, tx: &IpcSender<Results>, lent: &mut Lent) -> std::io::Result<()> {
        let room = self.coded.len();
        let mut message = self.take(room);
        for region in &mut message.regions {
            region.lend(lent);
        }
        tx.send(message).map_err(io_error)
    }

    pub(super) fn take(&mut self, room: usize) -> Results {
        // Room for as much as the last message, but not the room of one that carried large
        // outputs: a worker keeps it while idle, and under a memory limit it counts.
        let room = room.min(MESSAGE_ROOM);
        // The next message is read from its own start.
        (self.next_ticket, self.ended_ns) = (0, 0);
        Results {
            coded: std::mem::replace(&mut self.coded, Vec::with_capacity(room)),
            regions: std::mem::take(&mut self.regions),
        }
    }
}
/// One job's result as the coordinator reads it: the status its outcome takes, with the output
/// already made into what the coordinator keeps (see [`decode_results`]).
pub(crate) struct Received<T> {
    pub(crate) started_ns: u64,
    pub(crate) runtime_ns: u64,
    pub(crate) status: Status<T>,
}

/// Decodes a message of [`ResultsOut`], handing each result to `each` in order, its output
/// made by `output`. The results before a garbled one are handed on, then the error returned.
pub(crate) fn decode_results<T>(
    results: Results,
    mut output: impl FnMut(Payload) -> T,
    mut each: impl FnMut(Received<T>),
) -> Result<(), String> {
    let mut results = ResultsIn::new(results);
    while let Some(r) = results.next() {
        each(Received {
            started_ns: r.started_ns,
            runtime_ns: r.runtime_ns,
            status: r.output.into_status(&mut output),
        });
    }
    results.garbled().map_or(Ok(()), Err)
}

/// One result as [`ResultsIn`] reads it, before its status is made.
pub(crate) struct Read {
    pub(crate) ticket: u64,
    pub(crate) started_ns: u64,
    pub(crate) runtime_ns: u64,
    pub(crate) output: Output,
}

/// How a job ended, as read. The usual result, a success whose output is inline, is its bytes;
/// any other status is boxed, so that a [`Read`] is six words that the reader hands over in
/// registers. Read as a `Status` in place, in an `Option` of a `Result`, each result went
/// through the stack twice: the coordinator took 19% more instructions (200K no-ops on 2
/// processes, callgrind: 130 M against 110 M). As a `Vec` and an `Option<Box<_>>` beside it,
/// 11% more (115 M against 103 M). A garbled message is told apart by
/// [`ResultsIn::garbled`], not by a `Result` around each result: that cost 29 instructions a
/// job.
pub(crate) enum Output {
    Inline(Vec<u8>),
    Other(Box<Status<Payload>>),
}

impl Output {
    /// The status the result takes, its output (if any) made by `output`.
    pub(crate) fn into_status<T>(self, output: impl FnOnce(Payload) -> T) -> Status<T> {
        match self {
            Output::Inline(bytes) => Status::Ok(output(Payload::Inline(bytes))),
            Output::Other(status) => status.map(output),
        }
    }
}

/// A message of [`ResultsOut`], read one result at a time.
pub(crate) struct ResultsIn {
    coded: Vec<u8>,
    /// Where the next result starts.
    at: usize,
    regions: Vec<Option<Payload>>,
    /// The ticket of a result that does not write its own, and when the one before ended.
    next_ticket: u64,
    ended_ns: u64,
    /// What was wrong with the result the message ended at, if it was garbled.
    garbled: Option<String>,
}

impl ResultsIn {
    pub(crate) fn new(results: Results) -> ResultsIn {
        let Results { coded, regions } = results;
        ResultsIn {
            coded,
            at: 0,
            regions: regions.into_iter().map(Some).collect(),
            next_ticket: 0,
            ended_ns: 0,
            garbled: None,
        }
    }

    /// The next result; `None` after the last, or at a garbled one, which ends the message
    /// (see [`garbled`](Self::garbled)).
    ///
    /// The usual result (the next ticket, a success with a short inline output, started less
    /// than 64 ns after the one before ended) is read here at once, its flags, start and
    /// length together; any other by [`next_any`](Self::next_any), which reads the usual one
    /// the same way (`results_tests::decode_all` holds the two to it). Through `next_any`
    /// alone the coordinator took 13% more instructions (200K no-ops on 2 processes,
    /// callgrind: 110 M against 97 M).
    #[inline]
    pub(crate) fn next(&mut self) -> Option<Read> {
        let bytes = self.coded.get(self.at..)?;
        if let [TAG_USUAL, gap, len, rest @ ..] = bytes
            && (gap | len) < 0x80
            && let Some((out, mut rest)) = rest.split_at_checked(*len as usize)
            && let Ok(runtime_ns) = varint_of(&mut rest)
        {
            // An empty output (a task returning `()`) skips the allocator's call.
            let output = if out.is_empty() {
                Vec::new()
            } else {
                out.to_vec()
            };
            let (ticket, started_ns) = (
                self.next_ticket,
                self.ended_ns.wrapping_add(unzigzag((*gap).into())),
            );
            self.at = self.coded.len() - rest.len();
            self.next_ticket = ticket.wrapping_add(1);
            self.ended_ns = started_ns.wrapping_add(runtime_ns);
            return Some(Read {
                ticket,
                started_ns,
                runtime_ns,
                output: Output::Inline(output),
            });
        }
        self.next_any()
    }

    /// The next result, of any kind (see [`next`](Self::next)).
    #[inline(never)]
    fn next_any(&mut self) -> Option<Read> {
        let mut bytes = self.coded.get(self.at..).filter(|b| !b.is_empty())?;
        let read = read_any(
            &mut bytes,
            &mut self.regions,
            self.next_ticket,
            self.ended_ns,
        );
        match read {
            Ok(r) => {
                self.at = self.coded.len() - bytes.len();
                self.next_ticket = r.ticket.wrapping_add(1);
                self.ended_ns = r.started_ns.wrapping_add(r.runtime_ns);
                Some(r)
            }
            Err(e) => {
                self.at = self.coded.len();
                self.garbled = Some(e);
                None
            }
        }
    }

    /// What was wrong with the result that ended the message early, if one did.
    pub(crate) fn garbled(&mut self) -> Option<String> {
        self.garbled.take()
    }
}

/// Reads one result of any kind; the statuses other than an inline success are read by
/// [`ended_of`], out of line.
pub(super) fn read_any(
    bytes: &mut &[u8],
    regions: &mut [Option<Payload>],
    next_ticket: u64,
    ended_ns: u64,
) -> Result<Read, String> {
    let flags = byte_of(bytes)?;
    if flags & 0x0f & !RESULT_TICKET != 0 {
        return Err(bad_flags("result", flags));
    }
    let ticket = match flags & RESULT_TICKET {
        0 => next_ticket,
        _ => varint_of(bytes)?,
    };
    let started_ns = ended_ns.wrapping_add(unzigzag(varint_of(bytes)?));
    let output = match flags >> 4 {
        TAG_OK => Output::Inline(slice_of(bytes)?.to_vec()),
        tag => Output::Other(Box::new(ended_of(tag, bytes, regions)?)),
    };
    let runtime_ns = varint_of(bytes)?;
    Ok(Read {
        ticket,
        started_ns,
        runtime_ns,
        output,
    })
}

/// The status of a result with tag `tag`, other than an inline success.
#[inline(never)]
pub(super) fn ended_of(
    tag: u8,
    bytes: &mut &[u8],
    regions: &mut [Option<Payload>],
) -> Result<Status<Payload>, String> {
    fn string_of(bytes: &mut &[u8]) -> Result<String, String> {
        String::from_utf8(slice_of(bytes)?.to_vec()).map_err(|e| e.to_string())
    }
    Ok(match tag {
        TAG_OK_SHARED => {
            let at = varint_of(bytes)?;
            let region = usize::try_from(at)
                .ok()
                .and_then(|i| regions.get_mut(i)?.take())
                .ok_or_else(|| format!("results name a missing region {at}"))?;
            Status::Ok(region)
        }
        TAG_FAILED => Status::Failed(string_of(bytes)?),
        TAG_TIMED_OUT => Status::TimedOut,
        TAG_CANCELLED => Status::Cancelled,
        TAG_PANICKED => Status::Panicked {
            message: string_of(bytes)?,
            location: match byte_of(bytes)? {
                NO_LOCATION => None,
                LOCATION => Some(string_of(bytes)?),
                other => return Err(format!("bad location flag {other}")),
            },
        },
        other => return Err(format!("bad status tag {other}")),
    })
}

/// The first byte of a message of results that is instead a message from a running task to its
/// caller (see [`Results::note`]): no result's flags byte is this (a status tag is at most
/// [`TAG_OK_SHARED`]), and a worker never sends an empty message of results.
pub(super) const NOTE: u8 = 0xff;

impl Results {
    /// A running task's message to its caller (`Context::send`): the job's `seq`, then the
    /// value's bincode, all inline. It travels alone, on the worker's result channel, so a job
    /// that sends nothing costs nothing more and a message is read by whoever reads results.
    pub(crate) fn note<T: Serialize + ?Sized>(seq: u64, value: &T) -> Result<Results, String> {
        let mut coded = vec![NOTE];
        put_varint(&mut coded, seq);
        bincode::serde::encode_into_std_write(value, &mut coded, config())
            .map_err(|e| e.to_string())?;
        Ok(Results {
            coded,
            regions: Vec::new(),
        })
    }

    /// Whether this is a task's message (see [`note`](Self::note)), not results.
    #[inline(always)]
    pub(crate) fn is_note(&self) -> bool {
        self.coded.first() == Some(&NOTE)
    }

    /// The job's seq and the value's bytes of a task's message; `None` for results or a
    /// garbled message.
    pub(crate) fn into_note(self) -> Option<(u64, Vec<u8>)> {
        let (seq, header) = {
            let mut rest = self.coded.get(1..)?;
            let seq = varint_of(&mut rest).ok()?;
            (seq, self.coded.len() - rest.len())
        };
        if !self.is_note() || !self.regions.is_empty() {
            return None;
        }
        let mut value = self.coded;
        value.drain(..header);
        Some((seq, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coded(bytes: &[u8]) -> Results {
        Results {
            coded: bytes.to_vec(),
            regions: Vec::new(),
        }
    }

    /// The results as text, to compare: payloads are compared by their bytes.
    fn decode_all(bytes: &[u8]) -> Result<Vec<String>, String> {
        let shown = |ticket, started_ns, runtime_ns, status: &Status<Vec<u8>>| {
            format!("{ticket} {started_ns} {runtime_ns} {status:?}")
        };
        let read = |next: fn(&mut ResultsIn) -> Option<Read>| {
            let mut all = Vec::new();
            let mut results = ResultsIn::new(coded(bytes));
            while let Some(r) = next(&mut results) {
                let (ticket, started_ns, runtime_ns) = (r.ticket, r.started_ns, r.runtime_ns);
                let status = r.output.into_status(|p| p.to_vec());
                all.push(shown(ticket, started_ns, runtime_ns, &status));
            }
            results.garbled().map_or(Ok(all), Err)
        };
        // The usual results read at once, the rest by `next_any`: the same results, and the
        // same error where the message is garbled, as `next_any` alone reads.
        let all = read(ResultsIn::next);
        assert_eq!(all, read(ResultsIn::next_any), "read by next_any alone");
        all
    }

    /// One result as written: ticket, started, runtime, and the output's bytes or how it ended.
    type Sent = (u64, u64, u64, Result<Vec<u8>, Ended>);

    /// Writes `results` as a worker does, the output bytes as a tuple of bytes (which bincode
    /// encodes as themselves), and returns the message and what `decode_all` should show.
    fn written(results: Vec<Sent>) -> (Vec<u8>, Vec<String>) {
        written_by(results, ResultsOut::begin)
    }

    fn written_by(
        results: Vec<Sent>,
        begin: fn(&mut ResultsOut, u64, u64),
    ) -> (Vec<u8>, Vec<String>) {
        use crate::outcome::Status as Received;
        let mut out = ResultsOut::default();
        let mut want = Vec::new();
        for (ticket, started_ns, runtime_ns, status) in results {
            begin(&mut out, ticket, started_ns);
            let shown = match status {
                Ok(bytes) => {
                    match bytes[..] {
                        [] => out.ok(&()).unwrap(),
                        [a, b, c] => out.ok(&(a, b, c)).unwrap(),
                        _ => unreachable!("the outputs tested"),
                    }
                    Received::Ok(bytes)
                }
                Err(ended) => {
                    // Whatever the task had written goes.
                    out.ok(&(7u8, 7u8)).unwrap();
                    let shown = match &ended {
                        Ended::Failed(m) => Received::Failed(m.clone()),
                        Ended::TimedOut => Received::TimedOut,
                        Ended::Cancelled => Received::Cancelled,
                        Ended::Panicked { message, location } => Received::Panicked {
                            message: message.clone(),
                            location: location.clone(),
                        },
                    };
                    out.ended(ended);
                    shown
                }
            };
            out.end(runtime_ns);
            want.push(format!("{ticket} {started_ns} {runtime_ns} {shown:?}"));
        }
        (out.take(0).coded, want)
    }

    /// A value that encodes to one more byte each time it is encoded.
    struct Growing(std::sync::atomic::AtomicUsize);

    impl Serialize for Growing {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            s.collect_seq(std::iter::repeat_n(1u8, n))
        }
    }

    #[test]
    fn an_output_that_changes_while_encoded_fails_its_job_alone() {
        let mut out = ResultsOut::default();
        out.begin(0, 10);
        out.ok(&()).unwrap();
        out.end(1);
        out.begin(1, 20);
        let err = out.ok(&Growing(3.into())).unwrap_err();
        assert!(err.contains("changed while being encoded"), "{err}");
        out.ended(Ended::Failed(err));
        out.end(2);
        let got = decode_all(&out.take(0).coded).expect("the message stays readable");
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("0 10 1 Ok("), "{got:?}");
        assert!(got[1].starts_with("1 20 2 Failed("), "{got:?}");
    }

    #[test]
    fn results_round_trip_every_status() {
        let done = |ticket, status| (ticket, u64::MAX - ticket, 1 << 40, status);
        let results = vec![
            done(0, Ok(vec![])),
            done(1, Ok(vec![1, 2, 3])),
            done(2, Err(Ended::Failed("nope: é".into()))),
            done(3, Err(Ended::TimedOut)),
            done(4, Err(Ended::Cancelled)),
            done(
                5,
                Err(Ended::Panicked {
                    message: "boom".into(),
                    location: Some("src/x.rs:1:2".into()),
                }),
            ),
            done(
                6,
                Err(Ended::Panicked {
                    message: String::new(),
                    location: None,
                }),
            ),
            done(7, Ok(vec![4, 5, 6])),
        ];
        let (bytes, want) = written(results);
        assert_eq!(decode_all(&bytes), Ok(want));
        assert_eq!(decode_all(&[]), Ok(vec![]));
    }

    #[test]
    fn truncated_or_garbled_results_are_an_error_not_a_panic() {
        let (bytes, _) = written(vec![(7, 8, 9, Err(Ended::Failed("message".into())))]);
        for n in 0..bytes.len() {
            assert!(decode_all(&bytes[..n]).is_err() || n == 0, "{n} bytes");
        }
        for flags in [0x91, 0x13, 0xf0] {
            let mut bad = bytes.clone();
            bad[0] = flags;
            assert!(decode_all(&bad).is_err(), "flags {flags:#x}");
        }
        // A failure whose message claims more bytes than there are, or than 64 bits hold.
        let mut huge = vec![0x10, 0];
        put_varint(&mut huge, u64::MAX);
        huge.extend_from_slice(b"message\x01");
        assert!(decode_all(&huge).is_err());
        let mut over = vec![0x10, 0];
        over.extend_from_slice(&[0xff; 10]);
        assert!(decode_all(&over).is_err());
    }

    #[test]
    fn results_run_on_from_the_one_before() {
        // Consecutive tickets, each job starting as the one before ended: four bytes a no-op.
        let (bytes, want) = written(vec![
            (10, 1_000, 7, Ok(vec![])),
            (11, 1_007, 3, Ok(vec![])),
            (12, 1_010, 300, Ok(vec![])),
            // Out of turn, and started before the last one ended.
            (20, 1_000, 1, Ok(vec![])),
            (21, 5_000, 2, Err(Ended::TimedOut)),
        ]);
        assert_eq!(decode_all(&bytes), Ok(want));
        // The first took flags, ticket 10, a two-byte start, length 0 and runtime 7.
        assert_eq!(
            &bytes[6..10],
            &[0, 0, 0, 3],
            "the second: flags, start, length, runtime"
        );
    }

    #[test]
    fn varints_round_trip_at_every_width() {
        let mut values = vec![0, 1, 127, 128, 255, 16_383, 16_384, u64::MAX - 1, u64::MAX];
        values.extend((0..64).map(|b| 1u64 << b));
        let mut bytes = Vec::new();
        for &v in &values {
            put_varint(&mut bytes, v);
            put_varint(&mut bytes, zigzag(v));
        }
        let mut read = &bytes[..];
        for &v in &values {
            assert_eq!(varint_of(&mut read), Ok(v));
            assert_eq!(varint_of(&mut read).map(unzigzag), Ok(v));
        }
        assert!(read.is_empty());
        assert_eq!(zigzag(1u64.wrapping_neg()), 1, "-1 is small");
        assert!(varint_of(&mut &[0x80][..]).is_err(), "cut short");
        assert!(varint_of(&mut &[0xff; 10][..]).is_err(), "past 64 bits");
    }
}
