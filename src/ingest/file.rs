//! Importing JSON lines files: `shoal import`, and an import through a
//! running node.
//!
//! Owns reading the input in bounded lines ([`read_line_bounded`], at most
//! [`MAX_LINE_BYTES`] each, blank lines skipped) and batches of
//! [`BATCH_LINES`], the overlapping stages of [`import`] (a reader
//! thread, checking on the rayon pool and placement on the caller's thread,
//! a short-lived writer thread of its own: there is no node), and [`import_through`], the same reading
//! and counting for an import handed to a running node's pipeline. Memory is
//! bounded by the batch size, never by the file. Imports `store` and the
//! sibling modules `check` and `writer` (for how a
//! checked batch is written).

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};

use super::check::{
    BATCH_LINES, Batch, Checker, ImportError, Line, LineBatch, LineError, LineResult,
    MAX_LINE_BYTES, Rejection,
};
use super::writer::{Stored, finish_batch};
use crate::store::{Store, StoreError, Written};

/// Batches prechecked (parsed, signature-checked) on the rayon pool while
/// the checker places the one before them in its feeds: the pool's threads
/// then do not wait for each other at the end of each batch.
const CHECK_AHEAD: usize = 1;
/// Checked batches an import writes in one transaction (16,384 lines):
/// fewer commits, and fewer copies of the pages each commit rewrites;
/// since a transaction's index entries go in sorted (`store`), also
/// fewer pages each takes. Eight instead of four: about 1.3% off the
/// import, and 18 MB more at its peak (README "Import").
const IMPORT_GROUP: usize = 8;
/// Checked batches that may wait for the import's writer: with one, the
/// checker stopped whenever the writer was in a commit (README "Import":
/// about 5% of the import's time).
const WRITER_QUEUE: usize = 3;

/// When the import's writer commits: every [`IMPORT_GROUP`] batches, until
/// the reader reaches the end of the input. Then the group in progress is
/// committed at once, while the last batches are still being checked, and
/// those last batches (however many: no more than the stages between the
/// reader and the writer hold) make the final group. Only their small
/// commit is then left to do alone once checking ends (README "Import").
#[derive(Default)]
struct Grouping {
    /// Whether the group in progress when the input ended was cut.
    cut_at_end: bool,
}

impl Grouping {
    /// Whether the group holding `taken` batches ends before the next
    /// batch, the input having `ended` or not.
    fn ends(&mut self, taken: usize, ended: bool) -> bool {
        if ended && !self.cut_at_end {
            self.cut_at_end = true;
            return taken > 0;
        }
        taken >= IMPORT_GROUP && !ended
    }
}

/// Totals of one import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Messages newly stored.
    pub imported: u64,
    /// Messages the store already held.
    pub duplicates: u64,
    /// Lines rejected.
    pub rejected: u64,
}

/// Reads one line of at most [`MAX_LINE_BYTES`] onto the end of `buf`
/// (without the newline). Returns `None` at end of input, `Some(false)`
/// for a line that was too long (its bytes are skipped, not kept: `buf` is
/// as it was).
pub(crate) fn read_line_bounded(
    r: &mut impl BufRead,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    let start = buf.len();
    let mut too_long = false;
    let mut any = false;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(if any { Some(!too_long) } else { None });
        }
        any = true;
        let (part, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if !too_long {
            if buf.len() - start + part.len() > MAX_LINE_BYTES {
                too_long = true;
                buf.truncate(start);
            } else {
                buf.extend_from_slice(part);
            }
        }
        let used = done.unwrap_or(chunk.len());
        r.consume(used);
        if done.is_some() {
            if buf.len() > start && buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Some(!too_long));
        }
    }
}

/// Imports JSON lines from `input` into `store`. Every message is verified
/// (format, signature, chain, id = key where given); valid ones are stored
/// one batch per transaction; each rejected line is reported through
/// `on_reject` in line order. A rejected message does not stop other feeds;
/// later messages of its own feed are rejected as depending on it.
///
/// Four stages overlap: a reader thread reads the next batch; the rayon
/// pool prechecks (parses, signature-checks) the batch after the one the
/// caller's thread places in its feeds ([`CHECK_AHEAD`]); and a writer
/// thread writes each placed batch as it comes, committing every
/// [`IMPORT_GROUP`] batches, and once more when the reader reaches the end
/// of the input (the last batches then make one final, small,
/// transaction). The reader hands over at most one batch ahead;
/// up to [`WRITER_QUEUE`] placed batches wait for the writer, so that
/// checking keeps both cores busy while the writer waits for its fsync. The
/// checking threads run below the writer in priority
/// ([`super::start_check_pool`], in the `shoal` binary), so the writer
/// keeps up instead of being left a backlog to write alone at the end.
pub fn import(
    store: &Store,
    input: impl BufRead + Send,
    hmac: Option<&[u8; 32]>,
    mut on_reject: impl FnMut(Rejection),
) -> Result<Summary, ImportError> {
    // Set by the reader at the end of the input, a few batches before the
    // writer has them all.
    let input_ended = AtomicBool::new(false);
    let input_ended = &input_ended;
    std::thread::scope(|scope| {
        let (to_checker, line_batches) =
            std::sync::mpsc::sync_channel::<std::io::Result<LineBatch>>(1);
        let (recycle, recycled) = std::sync::mpsc::sync_channel::<LineBatch>(2);
        scope.spawn(move || {
            let mut lines = Lines::new(input, recycled);
            loop {
                let next = lines.next_batch().transpose();
                let Some(next) = next else {
                    input_ended.store(true, Ordering::Relaxed);
                    break;
                };
                let failed = next.is_err();
                if to_checker.send(next).is_err() || failed {
                    break;
                }
            }
        });
        let (to_writer, jobs) = std::sync::mpsc::sync_channel::<Batch>(WRITER_QUEUE);
        let (done, results) = std::sync::mpsc::channel::<Result<Stored, StoreError>>();
        let writer = scope.spawn(move || {
            let mut jobs = jobs.into_iter().peekable();
            let mut grouping = Grouping::default();
            while jobs.peek().is_some() {
                // Each batch is written as it comes; the group is
                // committed when it ends.
                let mut taken = 0;
                let group = std::iter::from_fn(|| {
                    if grouping.ends(taken, input_ended.load(Ordering::Relaxed)) {
                        return None;
                    }
                    taken += 1;
                    jobs.next()
                });
                let written = store.ingest_stream(group).and_then(|group| {
                    group
                        .into_iter()
                        .map(|(b, written)| match written {
                            Written::Each { fresh, known } => Ok(finish_batch(b, fresh, known)),
                            Written::Range(_) => unreachable!("an import places no range"),
                        })
                        .collect::<Result<Vec<Stored>, StoreError>>()
                });
                let sent = match written {
                    Ok(group) => group.into_iter().all(|s| done.send(Ok(s)).is_ok()),
                    Err(e) => done.send(Err(e)).is_ok(),
                };
                if !sent {
                    break;
                }
            }
        });
        let mut summary = Summary::default();
        let mut tally = |summary: &mut Summary, stored: Result<Stored, StoreError>| {
            for (line, r) in stored?.results {
                match r {
                    LineResult::Stored(..) => summary.imported += 1,
                    LineResult::Duplicate(..) => summary.duplicates += 1,
                    LineResult::Rejected(reason) => {
                        summary.rejected += 1;
                        on_reject(Rejection { line, reason });
                    }
                }
            }
            Ok::<(), ImportError>(())
        };
        let mut checker = Checker::new(store, hmac);
        let result = (|| {
            let mut ahead = std::collections::VecDeque::new();
            let mut lines = line_batches.iter();
            loop {
                if let Some(next) = lines.next() {
                    ahead.push_back(checker.precheck(next?, None));
                    if ahead.len() <= CHECK_AHEAD {
                        continue;
                    }
                }
                let Some(pre) = ahead.pop_front() else { break };
                let (batch, used) = checker.place(pre, None)?;
                let _ = recycle.try_send(used);
                to_writer
                    .send(batch)
                    .map_err(|_| std::io::Error::other("store writer stopped"))?;
                while let Ok(stored) = results.try_recv() {
                    tally(&mut summary, stored)?;
                }
            }
            Ok(())
        })();
        drop(to_writer);
        // A writer that stopped before writing everything (it panicked)
        // leaves results missing: the import failed, whatever it counted.
        let finished = writer.join().is_ok();
        // What the writer stored after the last batch was handed over.
        result.and_then(|()| {
            if !finished {
                return Err(std::io::Error::other("store writer stopped").into());
            }
            for stored in results.try_iter() {
                tally(&mut summary, stored)?;
            }
            Ok(summary)
        })
    })
}

/// Imports JSON lines from `input` through something that checks and
/// stores them elsewhere (a running node's pipeline: `submit` hands it one
/// batch of messages and returns what became of each, in order). Reads
/// and batches the lines exactly as [`import`] does: bounded lines, blank
/// ones skipped, at most [`BATCH_LINES`] a batch. A line longer than
/// [`MAX_LINE_BYTES`] is rejected unread and never submitted. Each rejected
/// line is reported through `on_reject`, in line order; the summary counts
/// what `submit` stored, what the store already held, and every rejected
/// line.
pub fn import_through(
    input: impl BufRead,
    mut submit: impl FnMut(&[&[u8]]) -> Vec<LineResult>,
    mut on_reject: impl FnMut(Rejection),
) -> Result<Summary, ImportError> {
    let (recycle, recycled) = std::sync::mpsc::sync_channel::<LineBatch>(1);
    let mut lines = Lines::new(input, recycled);
    let mut summary = Summary::default();
    let mut reject = |summary: &mut Summary, line: u64, reason: String| {
        summary.rejected += 1;
        on_reject(Rejection { line, reason });
    };
    while let Some(batch) = lines.next_batch()? {
        let items: Vec<&[u8]> = batch
            .lines
            .iter()
            .filter_map(|(_, l)| l.as_ref().ok().map(|l| l.of(&batch.text)))
            .collect();
        let mut results = if items.is_empty() {
            Vec::new()
        } else {
            submit(&items)
        }
        .into_iter();
        for (line, l) in &batch.lines {
            match l {
                Err(e) => reject(&mut summary, *line, e.to_string()),
                Ok(_) => match results.next() {
                    Some(LineResult::Stored(..)) => summary.imported += 1,
                    Some(LineResult::Duplicate(..)) => summary.duplicates += 1,
                    Some(LineResult::Rejected(reason)) => reject(&mut summary, *line, reason),
                    None => {}
                },
            }
        }
        drop(items);
        let _ = recycle.try_send(batch);
    }
    Ok(summary)
}

/// The reading stage: bounded batches of numbered, non-blank lines.
struct Lines<R> {
    input: R,
    line_no: u64,
    eof: bool,
    /// Batches the checker is done with, reused so that their memory is not
    /// returned to the system and faulted in again for every batch.
    recycled: std::sync::mpsc::Receiver<LineBatch>,
}

impl<R: BufRead> Lines<R> {
    fn new(input: R, recycled: std::sync::mpsc::Receiver<LineBatch>) -> Self {
        Lines {
            input,
            line_no: 0,
            eof: false,
            recycled,
        }
    }

    fn next_batch(&mut self) -> std::io::Result<Option<LineBatch>> {
        let mut b = match self.recycled.try_recv() {
            Ok(mut b) => {
                b.text.clear();
                b.lines.clear();
                b
            }
            Err(_) => LineBatch {
                text: Vec::with_capacity(BATCH_LINES * 700),
                lines: Vec::with_capacity(BATCH_LINES),
            },
        };
        while !self.eof && b.lines.len() < BATCH_LINES {
            let start = b.text.len();
            match read_line_bounded(&mut self.input, &mut b.text)? {
                None => self.eof = true,
                Some(ok) => {
                    self.line_no += 1;
                    if !ok {
                        b.lines.push((self.line_no, Err(LineError::TooLong)));
                    } else if b.text[start..].iter().all(u8::is_ascii_whitespace) {
                        b.text.truncate(start);
                    } else {
                        b.lines
                            .push((self.line_no, Ok(Line::In(start..b.text.len()))));
                    }
                }
            }
        }
        Ok(if b.lines.is_empty() { None } else { Some(b) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::FeedId;

    /// The sizes of the groups the writer commits, for `batches` batches of
    /// which the reader has read them all once the writer has taken
    /// `taken_at_end`.
    fn groups(batches: usize, taken_at_end: usize) -> Vec<usize> {
        let mut grouping = Grouping::default();
        let (mut sizes, mut given) = (Vec::new(), 0);
        while given < batches {
            let mut taken = 0;
            while given < batches && !grouping.ends(taken, given >= taken_at_end) {
                taken += 1;
                given += 1;
            }
            sizes.push(taken);
        }
        sizes
    }

    #[test]
    fn the_writer_commits_whole_groups_and_what_it_holds_when_the_input_ends() {
        // Whole groups while the input lasts.
        assert_eq!(groups(2 * IMPORT_GROUP, usize::MAX), [IMPORT_GROUP; 2]);
        // The end of the input read in the middle of the third group: what
        // the writer holds is committed, then the rest in one group, however
        // many batches that is (more than a group here).
        let held = 3;
        let rest = IMPORT_GROUP + 2;
        assert_eq!(
            groups(2 * IMPORT_GROUP + held + rest, 2 * IMPORT_GROUP + held),
            [IMPORT_GROUP, IMPORT_GROUP, held, rest]
        );
        // Read between two groups: nothing is cut, the rest is one group.
        assert_eq!(groups(IMPORT_GROUP + 3, IMPORT_GROUP), [IMPORT_GROUP, 3]);
        // Read before the writer took anything: one group of everything.
        assert_eq!(groups(IMPORT_GROUP + 1, 0), [IMPORT_GROUP + 1]);
    }

    /// `import_through` skips blank lines, rejects over-long ones unread
    /// with the file import's wording, batches at most `BATCH_LINES`, and
    /// counts what `submit` made of the rest; rejections come in line
    /// order.
    #[test]
    fn an_import_through_a_submitter_reads_and_counts_as_the_file_import() {
        let mut input = Vec::new();
        let n = BATCH_LINES + 10;
        for i in 1..=n {
            match i {
                3 => input.extend_from_slice(b"  \r"),
                5 => input.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 1)),
                _ if i % 7 == 0 => input.extend_from_slice(format!("r{i}").as_bytes()),
                _ if i % 5 == 0 => input.extend_from_slice(format!("d{i}").as_bytes()),
                _ => input.extend_from_slice(format!("s{i}").as_bytes()),
            }
            input.push(b'\n');
        }
        let mut batches = Vec::new();
        let mut rejections = Vec::new();
        let summary = import_through(
            &input[..],
            |items| {
                batches.push(items.len());
                items
                    .iter()
                    .map(|l| match l[0] {
                        b's' => LineResult::Stored(FeedId([0; 32]), 1),
                        b'd' => LineResult::Duplicate(FeedId([0; 32]), 1),
                        _ => LineResult::Rejected(String::from_utf8_lossy(l).into_owned()),
                    })
                    .collect()
            },
            |r| rejections.push(r),
        )
        .unwrap();
        let rejected: Vec<usize> = (1..=n).filter(|i| *i == 5 || *i % 7 == 0).collect();
        let duplicates = (1..=n)
            .filter(|i| *i != 5 && *i % 5 == 0 && *i % 7 != 0)
            .count();
        assert_eq!(
            summary,
            Summary {
                imported: (n - 1 - rejected.len() - duplicates) as u64,
                duplicates: duplicates as u64,
                rejected: rejected.len() as u64,
            }
        );
        assert!(batches.iter().all(|b| *b <= BATCH_LINES), "{batches:?}");
        assert_eq!(
            batches.iter().sum::<usize>(),
            n - 2,
            "blank and long unsent"
        );
        let lines: Vec<usize> = rejections.iter().map(|r| r.line as usize).collect();
        assert_eq!(lines, rejected, "in line order");
        assert_eq!(
            rejections[0].reason,
            format!("line longer than {MAX_LINE_BYTES} bytes")
        );
        assert_eq!(rejections[1].reason, "r7");
    }
}
