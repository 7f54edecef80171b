//! A batch of jobs: its byte layout, its encoder and its in-place decoder.

use super::varint::*;
use super::*;

/// Flags of a job in a batch (see [`encode_batch`]): which of its fields are written out.
pub(super) const JOB_TICKET: u8 = 1;
pub(super) const JOB_SEQ: u8 = 2;
pub(super) const JOB_ATTEMPT: u8 = 4;
pub(super) const JOB_SHARED: u8 = 8;
/// The longest head of a job: its flags, ticket, seq, attempt and input word.
pub(super) const JOB_HEAD_MAX: usize = 1 + 10 + 10 + 5 + 10;

/// Encodes jobs of `task` as one batch. Per job, a flags byte says which fields follow, each an
/// unsigned LEB128 varint: the `ticket` unless it is the one after the job before's, the `seq`
/// likewise, the `attempt` unless it is 1; then its input: with the shared flag, the place of
/// its shared-memory region among its message's regions, else the length of its bytes and
/// themselves. A message starts from ticket and seq 0 (so its first job writes both).
///
/// Tickets run on within a batch, and a fresh input's seq follows the one before, so a job with
/// a tiny input takes two bytes plus the input's: fewer bytes to copy into and out of the
/// socket, which at millions of jobs a second cost more than encoding them.
///
/// The jobs are `(seq, attempt, input)`, under consecutive tickets from `first_ticket`. Inline
/// inputs are copied straight into the message; a shared one travels as another handle on its
/// region (the caller keeps its own, which decides the region's reuse).
pub(crate) fn encode_batch<'a, I>(
    task: &str,
    timeout: Option<std::time::Duration>,
    first_ticket: u64,
    jobs: I,
) -> Batch
where
    I: IntoIterator<Item = (u64, u32, &'a Payload)>,
    I::IntoIter: Clone,
{
    let jobs = jobs.into_iter();
    // Sized up front for the usual heads of two bytes; a longer one may grow it.
    let size = jobs
        .clone()
        .map(|(_, _, input)| match input {
            Payload::Inline(bytes) => 2 + bytes.len(),
            Payload::Shared(_) => 2,
        })
        .sum::<usize>()
        + JOB_HEAD_MAX;
    let mut coded = Vec::with_capacity(size);
    let mut batch = Batch {
        task: task.to_string(),
        timeout,
        coded: Vec::new(),
        regions: Vec::new(),
        cuts: Vec::new(),
    };
    let mut next = (0, 0);
    for ((seq, attempt, input), ticket) in jobs.zip(first_ticket..) {
        put_job(
            &mut coded, &mut batch, &mut next, ticket, seq, attempt, input,
        );
    }
    batch.coded = coded;
    batch
}

/// Writes a job into `coded`, a batch's bytes, its region into `batch` (see [`encode_batch`]);
/// `next` is the ticket and seq a job need not write.
///
/// The usual job (an inline input under 128 bytes, its ticket and seq running on, a first
/// attempt) is the first branch: flags 0 and a one-byte length, written at once. Every other
/// is written by [`put_other_job`], out of line and cold. Through that tail alone the
/// coordinator took 15% more instructions (200K no-ops on 2 processes, callgrind: 105 M against
/// 91 M). Its fields are arguments of their own: as one tuple, built for every job, they cost
/// 7 instructions a job (91.2 M against 89.9 M).
#[inline(always)]
pub(super) fn put_job(
    coded: &mut Vec<u8>,
    batch: &mut Batch,
    next: &mut (u64, u64),
    ticket: u64,
    seq: u64,
    attempt: u32,
    input: &Payload,
) {
    if let Payload::Inline(bytes) = input
        && (ticket, seq, attempt) == (next.0, next.1, 1)
        && bytes.len() < 0x80
    {
        coded.extend_from_slice(&[0, bytes.len() as u8]);
        if !bytes.is_empty() {
            coded.extend_from_slice(bytes);
        }
        *next = (ticket.wrapping_add(1), seq.wrapping_add(1));
        return;
    }
    put_other_job(coded, batch, next, ticket, seq, attempt, input);
}

/// The rest of [`put_job`]: a job that writes its flags' fields, a long input or a shared one.
#[cold]
#[inline(never)]
fn put_other_job(
    coded: &mut Vec<u8>,
    batch: &mut Batch,
    next: &mut (u64, u64),
    ticket: u64,
    seq: u64,
    attempt: u32,
    input: &Payload,
) {
    let (mut flags, word, bytes): (u8, u64, &[u8]) = match input {
        Payload::Inline(bytes) => (0, bytes.len() as u64, bytes),
        Payload::Shared(_) => {
            let place = batch.regions.len() % REGIONS_PER_MESSAGE;
            if place == 0 && !batch.regions.is_empty() {
                // A message of its own: it starts from ticket and seq 0 again.
                batch.cuts.push(coded.len());
                *next = (0, 0);
            }
            batch.regions.push(input.clone());
            (JOB_SHARED, place as u64, &[])
        }
    };
    if ticket != next.0 {
        flags |= JOB_TICKET;
    }
    if seq != next.1 {
        flags |= JOB_SEQ;
    }
    if attempt != 1 {
        flags |= JOB_ATTEMPT;
    }
    coded.push(flags);
    if flags & JOB_TICKET != 0 {
        put_varint(coded, ticket);
    }
    if flags & JOB_SEQ != 0 {
        put_varint(coded, seq);
    }
    if flags & JOB_ATTEMPT != 0 {
        put_varint(coded, attempt.into());
    }
    put_varint(coded, word);
    coded.extend_from_slice(bytes);
    *next = (ticket.wrapping_add(1), seq.wrapping_add(1));
}

impl Batch {
    /// The messages of a batch, each with at most [`REGIONS_PER_MESSAGE`] regions; the first
    /// carries `returned`.
    pub(super) fn deliveries(self, returned: Vec<u64>) -> Vec<Delivery> {
        let Batch {
            task,
            timeout,
            mut coded,
            mut regions,
            cuts,
        } = self;
        let mut all = Vec::with_capacity(cuts.len() + 1);
        // From the back, so that each message's regions are the tail left.
        for (k, &cut) in cuts.iter().enumerate().rev() {
            all.push(Delivery {
                task: task.clone(),
                timeout,
                coded: coded.split_off(cut),
                regions: regions.split_off((k + 1) * REGIONS_PER_MESSAGE),
                returned: Vec::new(),
            });
        }
        all.push(Delivery {
            task,
            timeout,
            coded,
            regions,
            returned,
        });
        all.reverse();
        all
    }
}

/// One job of a [`Delivery`], read in place: its input borrows the message's bytes or region.
pub(crate) struct Job<'a> {
    pub(crate) ticket: u64,
    pub(crate) seq: u64,
    pub(crate) attempt: u32,
    pub(crate) input: &'a [u8],
}

impl Delivery {
    /// The jobs of this message, decoded one at a time as they are taken. A garbled message
    /// yields an error, after the jobs before it, and then ends.
    pub(crate) fn jobs(&self) -> Jobs<'_> {
        Jobs {
            bytes: &self.coded,
            regions: &self.regions,
            next_ticket: 0,
            next_seq: 0,
        }
    }
}

/// The jobs of a [`Delivery`]: see [`Delivery::jobs`].
pub(crate) struct Jobs<'a> {
    bytes: &'a [u8],
    regions: &'a [Payload],
    /// The ticket and seq of a job that does not write its own.
    next_ticket: u64,
    next_seq: u64,
}

impl<'a> Jobs<'a> {
    /// The next job. The usual one (flags 0 and an inline input under 128 bytes) is the first
    /// branch, read at once; every other, and a message cut short, by
    /// [`other_job`](Self::other_job), out of line and cold. Through that tail alone the
    /// workers took 36% more instructions (200K no-ops on 2 processes, callgrind: 55.9 M against
    /// 41.2 M).
    #[inline]
    fn job(&mut self) -> Result<Job<'a>, String> {
        if let [0, len, rest @ ..] = self.bytes
            && *len < 0x80
            && let Some((input, rest)) = rest.split_at_checked(*len as usize)
        {
            self.bytes = rest;
            let (ticket, seq) = (self.next_ticket, self.next_seq);
            (self.next_ticket, self.next_seq) = (ticket.wrapping_add(1), seq.wrapping_add(1));
            return Ok(Job {
                ticket,
                seq,
                attempt: 1,
                input,
            });
        }
        self.other_job()
    }

    /// The rest of [`job`](Self::job): a job with fields in its flags, a long or shared input,
    /// or a garbled one.
    #[cold]
    #[inline(never)]
    fn other_job(&mut self) -> Result<Job<'a>, String> {
        let bytes = &mut self.bytes;
        let flags = byte_of(bytes)?;
        if flags & !(JOB_TICKET | JOB_SEQ | JOB_ATTEMPT | JOB_SHARED) != 0 {
            return Err(bad_flags("job", flags));
        }
        let ticket = match flags & JOB_TICKET {
            0 => self.next_ticket,
            _ => varint_of(bytes)?,
        };
        let seq = match flags & JOB_SEQ {
            0 => self.next_seq,
            _ => varint_of(bytes)?,
        };
        let attempt = match flags & JOB_ATTEMPT {
            0 => 1,
            _ => {
                let n = varint_of(bytes)?;
                u32::try_from(n).map_err(|_| format!("attempt {n} out of range"))?
            }
        };
        let input = match flags & JOB_SHARED {
            0 => slice_of(bytes)?,
            _ => {
                let at = varint_of(bytes)?;
                let region = usize::try_from(at)
                    .ok()
                    .and_then(|i| self.regions.get(i))
                    .ok_or_else(|| format!("batch names a missing region {at}"))?;
                &region[..]
            }
        };
        (self.next_ticket, self.next_seq) = (ticket.wrapping_add(1), seq.wrapping_add(1));
        Ok(Job {
            ticket,
            seq,
            attempt,
            input,
        })
    }
}

impl<'a> Iterator for Jobs<'a> {
    type Item = Result<Job<'a>, String>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.bytes.is_empty() {
            return None;
        }
        let job = self.job();
        if job.is_err() {
            self.bytes = &[];
        }
        Some(job)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::shared;
    use super::*;

    type Decoded = (u64, u64, u32, Vec<u8>);

    /// The jobs of `d`, as the worker reads them.
    fn decode_all(d: &Delivery) -> Result<Vec<Decoded>, String> {
        let decoded = |j: Job<'_>| (j.ticket, j.seq, j.attempt, j.input.to_vec());
        d.jobs().map(|j| j.map(decoded)).collect()
    }

    fn delivery(coded: &[u8]) -> Delivery {
        Delivery {
            task: "t".into(),
            timeout: None,
            coded: coded.to_vec(),
            regions: Vec::new(),
            returned: Vec::new(),
        }
    }

    /// The messages of `inputs` as jobs under tickets from 10, with seq `100 + i`.
    fn sent(inputs: &[Payload]) -> Vec<Delivery> {
        let jobs = inputs
            .iter()
            .zip(0..)
            .map(|(p, i)| (100 + i, 1 + i as u32, p));
        let batch = encode_batch("t", Some(std::time::Duration::from_secs(3)), 10, jobs);
        batch.deliveries(vec![42])
    }

    fn expected(inputs: &[Payload]) -> Vec<Decoded> {
        inputs
            .iter()
            .zip(0..)
            .map(|(p, i)| (10 + i, 100 + i, 1 + i as u32, p.to_vec()))
            .collect()
    }

    #[test]
    fn jobs_of_every_shape_round_trip_across_messages() {
        let mut inputs = vec![Payload::Inline(vec![]), Payload::Inline(vec![1; 0x7f])];
        inputs.push(Payload::Inline(vec![2; 0x80]));
        for i in 0..REGIONS_PER_MESSAGE + 2 {
            inputs.push(shared(&[i as u8]));
            inputs.push(Payload::Inline(vec![i as u8]));
        }
        // Seqs that skip, attempts past the first, and every job's fields run on.
        let jobs = || {
            inputs.iter().zip(0u64..).map(|(p, i)| {
                let seq = if i % 5 == 3 { i + 100 } else { i };
                (seq, 1 + u32::from(i % 7 == 4), p)
            })
        };
        let batch = encode_batch("t", None, 3, jobs());
        assert!(!batch.cuts.is_empty(), "a cut is tested");
        let mut read = Vec::new();
        for d in batch.deliveries(Vec::new()) {
            read.extend(decode_all(&d).expect("each message decodes"));
        }
        let sent: Vec<_> = jobs()
            .zip(3..)
            .map(|((seq, attempt, p), ticket)| (ticket, seq, attempt, p.to_vec()))
            .collect();
        assert_eq!(read, sent);
    }

    #[test]
    fn batches_round_trip_inline_and_shared_inputs() {
        let inputs = vec![
            Payload::Inline(vec![]),
            Payload::Inline(vec![1, 2, 3]),
            shared(b"large"),
            Payload::Inline(vec![9; 1000]),
            shared(b"another"),
        ];
        let batch = encode_batch(
            "t",
            None,
            10,
            inputs
                .iter()
                .zip(0..)
                .map(|(p, i)| (100 + i, 1 + i as u32, p)),
        );
        assert_eq!(batch.coded.len(), 4 + 5 + 2 + 1000 + 5 + 2 + 2);
        assert!(batch.cuts.is_empty());
        let messages = sent(&inputs);
        assert_eq!(messages.len(), 1);
        let d = &messages[0];
        assert_eq!((d.task.as_str(), d.returned.as_slice()), ("t", &[42][..]));
        assert_eq!(d.timeout, Some(std::time::Duration::from_secs(3)));
        assert_eq!(d.regions.len(), 2);
        assert_eq!(decode_all(d), Ok(expected(&inputs)));
        assert_eq!(decode_all(&delivery(&[])), Ok(vec![]));
    }

    #[test]
    fn a_batch_with_many_shared_inputs_is_cut_into_messages() {
        let n = REGIONS_PER_MESSAGE;
        let mut inputs = vec![Payload::Inline(vec![1])];
        for i in 0..2 * n + 3 {
            inputs.push(shared(&[i as u8; 3]));
            inputs.push(Payload::Inline(vec![i as u8]));
        }
        let messages = sent(&inputs);
        assert_eq!(messages.len(), 3);
        let mut all = Vec::new();
        for (k, d) in messages.iter().enumerate() {
            assert!(d.regions.len() <= n);
            assert_eq!(
                d.returned.is_empty(),
                k > 0,
                "only the first carries returns"
            );
            assert_eq!(d.timeout, Some(std::time::Duration::from_secs(3)));
            all.extend(decode_all(d).expect("each message decodes alone"));
        }
        assert_eq!(all, expected(&inputs));
    }

    #[test]
    fn truncated_or_garbled_batches_are_an_error_not_a_panic() {
        let inputs = [Payload::Inline(vec![5; 7]), Payload::Inline(vec![])];
        let messages = sent(&inputs);
        let bytes = &messages[0].coded;
        // Flags, ticket 10, seq 100, length 7 (attempt 1 is not written), then the input; the
        // second job writes only its flags, attempt 2 and length 0.
        assert_eq!(bytes[..4], [JOB_TICKET | JOB_SEQ, 10, 100, 7]);
        assert_eq!(bytes[11..], [JOB_ATTEMPT, 2, 0]);
        let first = 4 + 7;
        for n in 0..bytes.len() {
            let decoded = decode_all(&delivery(&bytes[..n]));
            match n {
                0 => assert_eq!(decoded, Ok(vec![])),
                n if n == first => assert_eq!(decoded.map(|j| j.len()), Ok(1)),
                n => assert!(decoded.is_err(), "{n} bytes"),
            }
        }
        let garbled = |at: usize, with: &[u8]| {
            let mut bad = bytes.clone();
            bad[at..at + with.len()].copy_from_slice(with);
            decode_all(&delivery(&bad))
        };
        assert!(garbled(0, &[0x13]).is_err(), "bad flags");
        assert!(garbled(3, &[0x7f]).is_err(), "a length past the end");
        assert!(
            garbled(11, &[JOB_ATTEMPT, 0xff, 0xff]).is_err(),
            "an attempt cut short"
        );
        let missing = garbled(0, &[JOB_TICKET | JOB_SEQ | JOB_SHARED]);
        assert!(missing.is_err(), "a region the message does not carry");
        // The jobs before a garbled one still come out, then the error, then nothing.
        let mut bad = bytes.clone();
        bad[first] = 0xf0;
        let d = delivery(&bad);
        let mut jobs = d.jobs();
        assert!(matches!(jobs.next(), Some(Ok(j)) if j.input == [5; 7]));
        assert!(matches!(jobs.next(), Some(Err(_))));
        assert!(jobs.next().is_none());
    }
}
